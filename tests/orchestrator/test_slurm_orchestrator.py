#!/usr/bin/env python3
"""flam submit / watch / status / cancel on a real one-node Slurm (scripts/slurm-local.sh), with
the real `flam train` and `flam shard` as 2-rank jobs started by `srun --mpi=pmix` from the
rendered sbatch script. Training uses configs/tiny.yaml on the shards and tokenizer that
tests/train/test_train_e2e.py makes; sharding uses tests/shard/fixture.py's URL table served by
tests/common/http_server.py on 127.0.0.1.
  1. a training run completes; status reports it (text and --json); it is the reference;
     resubmitted with a changed lr it is refused (exit 2, the key old -> new), then let through
     by --allow-config-change and the change recorded in RUN/history.jsonl;
  2. a config error (model.lang.vocab_size is not the tokenizer's) fails once and is not
     resubmitted;
  3. kill -9 of one rank mid-run: srun's --kill-on-bad-exit ends the step, watch resubmits, the
     new job resumes from the checkpoint, and every logged loss and the exported parameters
     (`flam export`) equal the reference's bit for bit;
  4. scancel --signal=USR1 --batch: the batch shell forwards it, the ranks checkpoint and exit 3,
     watch resubmits, the new job resumes at that step and ends equal to the reference;
  5. status of a running job (step of total, ETA, the watch's pid); a second watch refuses; a
     run submitted --after it waits on an afterok dependency; flam cancel: the job is cancelled
     and watch stops;
  6. flam submit --job shard: a 2-rank `flam shard` job makes the same shards, byte for byte, as
     a local `flam shard` run.
Skips (exit 77, saying why) only when slurmctld cannot start here. FLAM_KEEP_TMP=1 keeps the
scratch directory; FLAM_SLURM_TEST_DIR, FLAM_SLURM_TEST_CTLD_PORT and FLAM_SLURM_TEST_SLURMD_PORT
move the test's cluster (default /tmp/flam-slurm-test, ports 16827 and 16828).
"""
import filecmp
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
PY = sys.executable
sys.path.insert(0, os.path.join(SRC, "tests", "checkpoint"))
import test_resume_e2e as resume  # noqa: E402  (tiny_run, metrics, losses_match, exported)
sys.path.insert(0, os.path.join(SRC, "tests", "common"))
from slurm_jobs import (JOB_ENV, background, fail, finish, flam, job_log,  # noqa: E402
                        local_slurm, sets, shard_config, state, wait_step, watch)

STEPS = 80
SIGNAL_AT = 20  # the step after which a rank is killed or the batch shell gets USR1
tmp = None


def slurm_sets(run, name):
    return ["run.dir=" + run, "run.name=" + name, "slurm.ntasks_per_node=2",
            "slurm.time=00:10:00", "slurm.poll_seconds=0.5", "slurm.backoff_seconds=1",
            "slurm.max_restarts=3", "slurm.env=[%s]" % ", ".join(JOB_ENV)]


def rank_pid(run, rank):
    """The pid of `flam train --config RUN/config.yaml` whose SLURM_PROCID is `rank`."""
    config = os.path.join(run, "config.yaml").encode()
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
        if (len(cmd) > 3 and cmd[0].endswith(b"flam") and cmd[1] == b"train" and
                config in cmd and b"SLURM_PROCID=%d" % rank in env):
            return int(pid)
    return None


def train_config(common, run, name, extra=()):
    return ["submit", "--config", os.path.join(SRC, "configs", "tiny.yaml")] + sets(
        common + slurm_sets(run, name) + list(extra))


def submit_until(common, name, step, extra=()):
    """Submits run `name` under tmp, watches it in the background and waits until it has logged
    `step`; returns (run directory, watcher, id of the job running then)."""
    run = os.path.join(tmp, name)
    flam(*train_config(common, run, "t-" + name, extra))
    watcher = watch(run)
    wait_step(run, step, watcher)
    return run, watcher, state(run)["jobs"][-1]["id"]


def check_identical(reference, ref_params, run, what):
    n = resume.losses_match(reference, run, what)
    params = resume.exported(run, os.path.join(tmp, os.path.basename(run) + ".safetensors"))
    if params.keys() != ref_params.keys():
        fail("%s: exported tensor names differ" % what, [run])
    for k in params:
        if params[k] != ref_params[k]:
            fail("%s: parameter %s differs from the uninterrupted run's" % (what, k), [run])
    print("%s: %d logged losses and %d exported tensors equal the reference's" %
          (what, n, len(params)))


def test_train(common):
    # ---- 1. a run completes: the reference ----
    print("== 1. a 2-rank training run completes")
    ok = os.path.join(tmp, "ok")
    out = flam(*train_config(common, ok, "t-ok")).stdout
    print(out, end="")
    if "submitted job" not in out:
        fail("submit printed no job id")
    rc = finish(watch(ok))
    if rc != 0:
        fail("watch of a good run exited %d" % rc, [ok])
    status = flam("status", ok).stdout
    print(status, end="")
    if "completed, 1 job(s), 0 restart(s)" not in status or "COMPLETED" not in status:
        fail("status text:\n" + status, [ok])
    d = json.loads(flam("status", ok, "--json").stdout)
    got = (d["status"], d["step"], d["total_steps"], d["jobs"][0]["exit_code"],
           d["newest_checkpoint_step"])
    if got != ("completed", STEPS, STEPS, 0, STEPS):
        fail("status --json: %r" % (got,), [ok])
    if "on 2 ranks (srun)" not in job_log(ok, d["jobs"][0]["id"]):
        fail("the job did not run 2 ranks under srun", [ok])
    reference = resume.metrics(ok)
    if [r["step"] for r in reference] != list(range(1, STEPS + 1)):
        fail("the reference logged steps %s" % [r["step"] for r in reference], [ok])
    ref_params = resume.exported(ok, os.path.join(tmp, "ok.safetensors"))

    # ---- 1b. the finished run resubmitted with a changed config ----
    print("== 1b. a changed config is refused, then let through and recorded")
    history = os.path.join(ok, "history.jsonl")
    changed = train_config(common, ok, "t-ok", ["train.optimizer.lr=1.0e-3"])
    p = flam(*changed, check=False)
    if (p.returncode != 2 or "train.optimizer.lr: 0.003 -> 0.001" not in p.stderr or
            os.path.exists(history) or len(state(ok)["jobs"]) != 1):
        fail("resubmission with a changed lr: exit %d\n%s" % (p.returncode, p.stderr), [ok])
    flam(*(changed + ["--allow-config-change"]))
    with open(history) as f:
        lines = [json.loads(line) for line in f]
    if [(l["command"], [c["key"] for c in l["changes"]]) for l in lines] != [
            ("submit", ["train.optimizer.lr"])]:
        fail("history.jsonl: %r" % lines, [ok])
    rc = finish(watch(ok))
    if rc != 0 or len(state(ok)["jobs"]) != 2:
        fail("the resubmitted run: watch exit %d, %d jobs" % (rc, len(state(ok)["jobs"])), [ok])

    # ---- 2. a config error: one job, no resubmission ----
    print("== 2. a config error fails once and is not resubmitted")
    bad = os.path.join(tmp, "bad")
    vocab = next(c for c in common if c.startswith("model.lang.vocab_size="))
    wrong = "model.lang.vocab_size=%d" % (int(vocab.split("=")[1]) + 1)
    flam(*train_config(common, bad, "t-bad", [wrong]))
    rc = finish(watch(bad))
    if rc != 1:
        fail("watch of a config error exited %d, not 1" % rc, [bad])
    s = state(bad)
    got = (s["status"], len(s["jobs"]), s["jobs"][0]["exit_code"], s["restarts"])
    if got != ("failed", 1, 2, 0):
        fail("state after a config error: %r" % (got,), [bad])
    log = open(os.path.join(bad, "orchestrator.log")).read()
    if "exited 2: a usage or config error" not in log or log.count("submitted job") != 1:
        fail("orchestrator.log after a config error:\n" + log, [bad])
    if "model.lang.vocab_size" not in job_log(bad, s["jobs"][0]["id"]):
        fail("the job log does not name the bad key", [bad])

    # ---- 3. kill -9 of one rank ----
    print("== 3. kill -9 of one rank: resubmitted, resumed, identical to the reference")
    kill, watcher, first_job = submit_until(common, "kill", SIGNAL_AT)
    victim = rank_pid(kill, 1)
    if victim is None:
        fail("no process of rank 1 found", [kill])
    os.kill(victim, signal.SIGKILL)
    print("killed rank 1 (pid %d) of job %s after step %d" %
          (victim, first_job, resume.metrics(kill)[-1]["step"]))
    rc = finish(watcher)
    if rc != 0:
        fail("watch after kill -9 exited %d" % rc, [kill])
    s = state(kill)
    jobs = s["jobs"]
    if not (s["status"] == "completed" and s["restarts"] >= 1 and jobs[0]["id"] == first_job and
            jobs[0]["exit_code"] != 0 and "resubmitting" in jobs[0]["decision"] and
            jobs[-1]["state"] == "COMPLETED" and jobs[-1]["exit_code"] == 0 and
            jobs[-1]["step_at_submit"] >= 5):
        fail("state after kill -9: %s" % json.dumps(s, indent=1), [kill])
    first_log = job_log(kill, first_job)
    # srun's --kill-on-bad-exit ends the step: SIGTERM to the surviving rank, which, blocked in a
    # collective with the dead one, cannot reach the step boundary to checkpoint; its watchdog
    # then gives up after a few seconds instead of train.checkpoint.watchdog_seconds (30 s) or
    # Slurm's SIGKILL after KillWait (30 s).
    if "task 1: Killed" not in first_log or "Terminating StepId=%s.0" % first_job not in first_log:
        fail("srun did not report the killed task and end the step", [kill])
    if "silent for" not in first_log or "after a stop signal" not in first_log:
        fail("the surviving rank was not ended by its watchdog after SIGTERM", [kill])
    if "resumed from" not in job_log(kill, jobs[-1]["id"]):
        fail("the new job did not resume from a checkpoint", [kill])
    check_identical(reference, ref_params, kill, "kill -9")
    flam("status", kill, "--plot", os.path.join(tmp, "kill.svg"))
    root = ET.parse(os.path.join(tmp, "kill.svg")).getroot()
    curves = [p for p in root.iter("{http://www.w3.org/2000/svg}polyline")
              if len(p.get("points", "").split()) > 10]
    restarts = [l for l in root.iter("{http://www.w3.org/2000/svg}line")
                if l.get("class") == "restart"]
    if len(curves) < 3 or not restarts:
        fail("plot of the killed run: %d curves, %d restart markers" %
             (len(curves), len(restarts)), [kill])

    # ---- 4. scancel --signal=USR1 --batch ----
    print("== 4. scancel --signal=USR1 --batch: checkpoint, exit 3, resubmitted, resumed")
    usr1, watcher, first_job = submit_until(common, "usr1", SIGNAL_AT)
    subprocess.run(["scancel", "--signal=USR1", "--batch", first_job], check=True)
    rc = finish(watcher)
    if rc != 0:
        fail("watch after USR1 exited %d" % rc, [usr1])
    first_log = job_log(usr1, first_job)
    if "SIGUSR1 received, forwarding" not in first_log:
        fail("the batch shell did not forward USR1", [usr1])
    marker = "stop requested: checkpointing step "
    if marker not in first_log:
        fail("the ranks did not checkpoint on USR1", [usr1])
    stopped = int(first_log.split(marker)[1].split()[0])
    s = state(usr1)
    if (s["jobs"][0]["exit_code"], s["status"], len(s["jobs"])) != (3, "completed", 2):
        fail("state after USR1: %s" % json.dumps(s, indent=1), [usr1])
    if "exit 3: stopped after a checkpoint" not in open(os.path.join(usr1,
                                                                     "orchestrator.log")).read():
        fail("the USR1 decision was not logged", [usr1])
    second_log = job_log(usr1, s["jobs"][1]["id"])
    if "step_%08d at step %d" % (stopped, stopped) not in second_log:
        fail("the new job did not resume at step %d, where USR1 stopped the first" % stopped,
             [usr1])
    print("USR1: stopped and checkpointed at step %d, resumed there" % stopped)
    check_identical(reference, ref_params, usr1, "USR1")

    # ---- 5. status of a running job, then flam cancel ----
    print("== 5. flam cancel stops the job and the watch")
    cancel, watcher, _ = submit_until(common, "cancel", 2, ["train.steps=100000"])
    status = flam("status", cancel).stdout
    if "RUNNING" not in status or "of 100000" not in status or "ETA" not in status:
        fail("status of a running job:\n" + status, [cancel])
    if "watched by pid %d" % watcher.pid not in status:
        fail("status does not name the watch:\n" + status, [cancel])
    second = flam("watch", cancel, check=False, timeout=60)
    if second.returncode != 2 or "is watched by pid %d" % watcher.pid not in second.stderr:
        fail("a second watch: exit %d\n%s" % (second.returncode, second.stderr), [cancel])
    # --after: a run chained after this one's current job waits for it (afterok).
    chained = os.path.join(tmp, "chained")
    flam(*(train_config(common, chained, "t-chained") + ["--after", cancel]))
    chained_job = state(chained)["jobs"][0]["id"]
    show = subprocess.run(["scontrol", "show", "job", "-o", chained_job], capture_output=True,
                          text=True).stdout
    if "Dependency=afterok:%s" % state(cancel)["jobs"][-1]["id"] not in show:
        fail("the chained job has no afterok dependency:\n" + show, [chained])
    flam("cancel", chained)
    flam("cancel", cancel)
    rc = finish(watcher)
    if rc != 1:
        fail("watch of a cancelled run exited %d" % rc, [cancel])
    s = state(cancel)
    if (s["status"], len(s["jobs"])) != ("cancelled", 1):
        fail("state after cancel: %s" % json.dumps(s, indent=1), [cancel])
    job_state = ""
    for _ in range(100):
        show = subprocess.run(["scontrol", "show", "job", "-o", s["jobs"][0]["id"]],
                              capture_output=True, text=True).stdout
        job_state = next((w for w in show.split() if w.startswith("JobState=")), "")
        if job_state == "JobState=CANCELLED":
            break
        time.sleep(0.1)
    if job_state != "JobState=CANCELLED":
        fail("the Slurm job was not cancelled: %s" % job_state, [cancel])


def test_shard():
    print("== 6. flam submit --job shard: 2 ranks under Slurm make the local run's shards")
    fixture = os.path.join(SRC, "tests", "shard", "fixture.py")
    www = os.path.join(tmp, "www")
    subprocess.run([PY, fixture, "files", www], check=True)
    port_file = os.path.join(tmp, "port")
    server = subprocess.Popen([PY, os.path.join(SRC, "tests", "common", "http_server.py"),
                               "--root", www, "--port-file", port_file],
                              stdout=subprocess.DEVNULL)
    background.append(server)
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.1)
    port = open(port_file).read().strip()
    table = os.path.join(tmp, "many.tsv")
    subprocess.run([PY, fixture, "many", port, table, "40"], check=True)
    config = os.path.join(tmp, "shard.yaml")
    shard_config(config, table, os.path.join(tmp, "unset"))

    local = os.path.join(tmp, "shards-local")
    flam("shard", "--config", config, "--set", "shard.output_dir=" + local, timeout=300)
    run = os.path.join(tmp, "shard-run")
    slurm_out = os.path.join(tmp, "shards-slurm")
    out = flam("submit", "--config", config, "--job", "shard",
               *sets(slurm_sets(run, "t-shard") + ["shard.output_dir=" + slurm_out])).stdout
    print(out, end="")
    rc = finish(watch(run))
    if rc != 0:
        fail("watch of the shard job exited %d" % rc, [run])
    s = state(run)
    if (s["status"], len(s["jobs"]), s["jobs"][0]["exit_code"]) != ("completed", 1, 0):
        fail("state of the shard run: %s" % json.dumps(s, indent=1), [run])
    log = job_log(run, s["jobs"][0]["id"])
    if " shard --config " not in open(os.path.join(run, "job.sbatch")).read():
        fail("the job script does not run flam shard", [run])
    if ", 2 ranks" not in log:
        fail("the shard job did not run 2 ranks", [run])

    def products(d):
        return sorted(f for f in os.listdir(d)
                      if not f.endswith("_stats.json") and f != "summary.json")
    names = products(local)
    if not any(n.endswith(".tar") for n in names) or products(slurm_out) != names:
        fail("shard sets differ: local %s, Slurm %s" % (names, products(slurm_out)), [run])
    stats = [f for f in os.listdir(slurm_out) if f.endswith("_stats.json")]
    if len(stats) != sum(n.endswith(".tar") for n in names):
        fail("the Slurm job left shards without stats: %s" % sorted(os.listdir(slurm_out)),
             [run])
    for n in names:
        if not filecmp.cmp(os.path.join(local, n), os.path.join(slurm_out, n), shallow=False):
            fail("%s differs between the local run and the Slurm job" % n, [run])
    with open(os.path.join(slurm_out, "summary.json")) as f:
        summary = json.load(f)
    print("shard: %d files identical (%d samples, %d ok); job log tail: %s" %
          (len(names), summary["samples"], summary["successes"],
           log.strip().splitlines()[-1]))


def main():
    global tmp
    with local_slurm("flam_slurm_test.") as tmp:
        # The model and data of tests/checkpoint/test_resume_e2e.py, checkpointing every 5
        # steps; the timeouts are a safety net only (Slurm ends a step whose rank died).
        common, _ = resume.tiny_run(tmp, STEPS, 5)
        common += ["train.checkpoint.watchdog_seconds=30", "train.comm_timeout_seconds=60"]
        test_train(common)
        test_shard()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
