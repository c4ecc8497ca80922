#!/usr/bin/env python3
"""flam submit --after on a real one-node Slurm (scripts/slurm-local.sh) when the run it waits
for does not go as planned:
  1. a shard run A (a 2-rank `flam shard` job whose download of one image hangs until its
     deadline) and a training run B submitted --after A: B's job waits on afterok:A's job. Rank
     0 of A's first job is killed (kill -9): the job fails, A's watch resubmits it, and B's watch
     re-points B's pending job at A's new job (scontrol update, logged in B's orchestrator.log);
     A completes, then B runs and completes with every step logged;
  2. a shard run that fails for good (its input table is missing: a config error, exit 2, never
     resubmitted) and a run C --after it: C's watch cancels C's pending job and fails the run,
     naming the shard run (exit 1).
Skips (exit 77, saying why) only when slurmctld cannot start here. FLAM_KEEP_TMP=1 keeps the
scratch directory; FLAM_SLURM_TEST_DIR and the ports as in test_slurm_orchestrator.py.
"""
import os
import signal
import subprocess
import sys
import time

SRC = os.environ["FLAM_SOURCE_DIR"]
PY = sys.executable
sys.path.insert(0, os.path.join(SRC, "tests", "checkpoint"))
import test_resume_e2e as resume  # noqa: E402  (tiny_run, metrics)
sys.path.insert(0, os.path.join(SRC, "tests", "common"))
from slurm_jobs import (JOB_ENV, background, fail, finish, flam, local_slurm, sets,  # noqa: E402
                        shard_config, state, watch)

STEPS = 6


def slurm_sets(run, name):
    return ["run.dir=" + run, "run.name=" + name, "slurm.ntasks_per_node=2",
            "slurm.time=00:10:00", "slurm.poll_seconds=0.5", "slurm.backoff_seconds=1",
            "slurm.max_restarts=3", "slurm.env=[%s]" % ", ".join(JOB_ENV)]


def rank_pid(config, rank):
    """The pid of `flam shard --config CONFIG` whose SLURM_PROCID is `rank`, or None."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if (len(cmd) > 3 and cmd[0].endswith(b"flam") and cmd[1] == b"shard" and
                config.encode() in cmd and b"SLURM_PROCID=%d" % rank in env):
            return int(pid)
    return None


def serve(tmp):
    """tests/common/http_server.py over the shard fixture's files; returns its port."""
    www = os.path.join(tmp, "www")
    subprocess.run([PY, os.path.join(SRC, "tests", "shard", "fixture.py"), "files", www],
                   check=True)
    port_file = os.path.join(tmp, "port")
    server = subprocess.Popen([PY, os.path.join(SRC, "tests", "common", "http_server.py"),
                               "--root", www, "--port-file", port_file],
                              stdout=subprocess.DEVNULL)
    background.append(server)
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            return open(port_file).read().strip()
        time.sleep(0.1)
    fail("the HTTP server wrote no port")


def test_rechain(tmp, common):
    print("== 1. A's first job killed and resubmitted: B's dependency follows it")
    port = serve(tmp)
    base = "http://127.0.0.1:%s" % port
    table = os.path.join(tmp, "a.tsv")
    with open(table, "w") as f:
        f.write("url\tcaption\n")
        for i in range(6):
            f.write("%s/f/crop%d.jpg\tphoto %d\n" % (base, i % 4, i))
        f.write("%s/x/hang=600/f/a.jpg\tnever answers\n" % base)  # holds each job ~8 s
    config = os.path.join(tmp, "a.yaml")
    shard_config(config, table, os.path.join(tmp, "a-shards"))
    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    flam("submit", "--config", config, "--job", "shard",
         *sets(slurm_sets(a, "t-a") + ["shard.save_cols=[]",
                                       "shard.download.total_timeout_seconds=8"]))
    first = state(a)["jobs"][0]["id"]
    flam("submit", "--config", os.path.join(SRC, "configs", "tiny.yaml"), "--after", a,
         *sets(common + slurm_sets(b, "t-b")))
    if state(b)["jobs"][0]["dependency"] != "afterok:" + first or state(b)["after"] != [a]:
        fail("B's first job: %r, after %r" % (state(b)["jobs"][0], state(b)["after"]), [b])
    watch_a, watch_b = watch(a), watch(b)
    a_config = os.path.join(a, "config.yaml")
    victim = None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline:
        victim = rank_pid(a_config, 0)
        time.sleep(0.05)
    if victim is None:
        fail("no rank 0 of A's job appeared", [a])
    os.kill(victim, signal.SIGKILL)
    print("killed rank 0 (pid %d) of A's job %s" % (victim, first))
    if finish(watch_a) != 0:
        fail("watch of A after the kill", [a])
    jobs = state(a)["jobs"]
    if len(jobs) != 2 or jobs[0]["id"] != first or "resubmitting" not in jobs[0]["decision"]:
        fail("A's jobs after the kill: %r" % jobs, [a])
    if finish(watch_b) != 0:
        fail("watch of B after A's resubmission", [b])
    s = state(b)
    log = open(os.path.join(b, "orchestrator.log")).read()
    moved = "dependency afterok:%s -> " % first
    if moved not in log:
        fail("B's dependency was not re-pointed from A's first job", [b])
    line = next(l for l in log.splitlines() if moved in l)
    if not (line.endswith("afterok:%s (the runs it is chained after moved on)" % jobs[1]["id"]) or
            "-> none" in line):
        fail("B's dependency re-pointed to the wrong job: " + line, [b])
    steps = [r["step"] for r in resume.metrics(b)]
    if s["status"] != "completed" or len(s["jobs"]) != 1 or steps != list(range(1, STEPS + 1)):
        fail("B: %s, %d job(s), steps %s" % (s["status"], len(s["jobs"]), steps), [b])
    print("B: %s; then ran and completed %d steps" % (line.split("Z ", 1)[-1], STEPS))


def test_predecessor_fails(tmp, common):
    print("== 2. the run waited for fails for good: the chained job is cancelled")
    config = os.path.join(tmp, "gone.yaml")
    shard_config(config, os.path.join(tmp, "missing.tsv"), os.path.join(tmp, "gone-shards"))
    gone, c = os.path.join(tmp, "gone"), os.path.join(tmp, "c")
    flam("submit", "--config", config, "--job", "shard", *sets(slurm_sets(gone, "t-gone")))
    flam("submit", "--config", os.path.join(SRC, "configs", "tiny.yaml"), "--after", gone,
         *sets(common + slurm_sets(c, "t-c")))
    c_job = state(c)["jobs"][0]["id"]
    if finish(watch(gone)) != 1 or state(gone)["status"] != "failed":
        fail("the shard run with a missing table did not fail", [gone])
    if len(state(gone)["jobs"]) != 1:
        fail("the shard run with a missing table (a config error) was resubmitted", [gone])
    if finish(watch(c)) != 1:
        fail("watch of C did not exit 1", [c])
    s = state(c)
    if s["status"] != "failed" or gone not in s["explanation"] or "cancelled" not in \
            s["explanation"]:
        fail("C: %s: %s" % (s["status"], s["explanation"]), [c])
    show = ""
    for _ in range(100):
        show = subprocess.run(["scontrol", "show", "job", "-o", c_job], capture_output=True,
                              text=True).stdout
        if "JobState=CANCELLED" in show:
            break
        time.sleep(0.1)
    if "JobState=CANCELLED" not in show:
        fail("C's job was not cancelled: " + show, [c])
    print("C: " + s["explanation"])


def main():
    with local_slurm("flam_slurm_rechain.") as tmp:
        common, _ = resume.tiny_run(tmp, STEPS, 3)
        test_rechain(tmp, common)
        test_predecessor_fails(tmp, common)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
