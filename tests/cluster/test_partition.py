#!/usr/bin/env python3
"""Scenario 2, a network partition: `flam train` on 3 nodes x 2 ranks; after step CUT_AFTER node
fn3's link goes down (scripts/slurm-cluster.sh cut 3) for CUT_SECONDS, longer than the
watchdog and collective timeout (TIMEOUT), then comes back. Asserts:
  - both sides of the cut give up on their own: rank 0 (fn1, watching rank 5 across the cut)
    and rank 4 (fn3, watching rank 3) log the watchdog line after the timeout, the ranks inside
    fn3's namespace are gone before the link is restored (they cannot reach srun, so the
    watchdog's own exit ends them), and the step exits 4;
  - no half-written checkpoint counts: `flam watch` resubmits (exit 4: restart from the
    checkpoint) and the new job, on the 3 nodes again, resumes from exactly the last step
    `latest` named when the link came back, and completes; every step_N/ left at the end has
    its manifest and `flam inspect checkpoint` calls it resumable.
Prints the detection times. Skips (77) when the cluster cannot start here."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as c  # noqa: E402

STEPS = 8
CUT_AFTER = 3
CHECKPOINT_EVERY = 2
TIMEOUT = 3
# Long enough for both watchdogs and their fallback exits (rank 4 notices rank 3 after TIMEOUT,
# rank 5 notices rank 4's end after TIMEOUT more), short of Slurm's node timeout, raised to 30 s
# for this test: a partition shorter than SlurmdTimeout is the case the watchdog is for.
CUT_SECONDS = 4 * TIMEOUT


def ranks_in(namespace):
    pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                          text=True).stdout.split()
    found = []
    for pid in pids:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if f.read().split(b"\0")[0].endswith(b"flam"):
                    found.append(pid)
        except OSError:
            pass
    return found


def committed(run):
    latest = os.path.join(run, "checkpoints", "latest")
    with open(latest) as f:
        return int(f.read().strip().split("_")[1])


def main():
    os.environ["FLAM_CLUSTER_SLURMD_TIMEOUT"] = "30"
    tmp = c.setup(3)
    try:
        t0 = time.time()
        common = c.tiny_run(tmp, STEPS, CHECKPOINT_EVERY, TIMEOUT)
        run = os.path.join(tmp, "partition")
        c.flam("submit", "--config", os.path.join(c.SRC, "configs", "tiny.yaml"),
               *c.sets(common + c.slurm_sets(run, "c-part", 3)))
        watcher = c.watch(run)
        c.wait_step(run, CUT_AFTER, watcher)
        if not ranks_in("flam-n3"):
            c.fail("no rank of the job runs in fn3's namespace", [run])
        # The job running now (an earlier one may have been lost at start-up and resubmitted).
        k = len(c.state(run)["jobs"]) - 1
        t_cut = time.time()
        c.cluster("cut", 3)
        last_committed = committed(run)
        gone = None
        while time.time() - t_cut < CUT_SECONDS:
            if gone is None and not ranks_in("flam-n3"):
                gone = time.time() - t_cut
            time.sleep(0.05)
        last_committed = max(last_committed, committed(run))
        c.cluster("restore", 3)
        print("fn3 cut off for %d s after step %d; its ranks ended %s s after the cut" %
              (CUT_SECONDS, CUT_AFTER, "%.1f" % gone if gone is not None else "never"))
        if gone is None:
            c.fail("the ranks inside the cut did not end while it lasted", [run])
        rc = c.finish(watcher)
        if rc != 0:
            c.fail("watch after the partition exited %d" % rc, [run])
        s = c.state(run)
        jobs = s["jobs"]
        first_log = c.job_log(run, jobs[k]["id"])
        if not (s["status"] == "completed" and len(jobs) >= k + 2 and jobs[k]["exit_code"] == 4 and
                "exit 4" in jobs[k]["decision"]):
            c.fail("state after the partition: %s" % json.dumps(s, indent=1), [run])
        noticed = sorted(set(int(r) for r in re.findall(r"noticed by rank (\d+)\)", first_log)))
        if not (set(noticed) & {0, 1, 2, 3} and set(noticed) & {4, 5}):
            c.fail("the watchdog did not fire on both sides of the cut (noticed by %s)" %
                   noticed, [run])
        # The first later job that got as far as loading a checkpoint (a job can also die at
        # start-up, in OpenMPI's TCP connection set-up: flam watch resubmits that too).
        m = None
        for job in jobs[k + 1:]:
            m = re.search(r"resumed from \S*step_(\d+)", c.job_log(run, job["id"]))
            if m:
                break
        if not m or int(m.group(1)) != last_committed:
            c.fail("the new job resumed from %s, not step %d, the last committed" %
                   (m.group(1) if m else "nothing", last_committed), [run])
        ckpts = os.path.join(run, "checkpoints")
        for d in sorted(os.listdir(ckpts)):
            if not d.startswith("step_") or d.endswith(".tmp"):
                continue
            out = c.flam("inspect", "checkpoint", os.path.join(ckpts, d), check=False).stdout
            if "resumable   yes" not in out:
                c.fail("%s is not a whole checkpoint:\n%s" % (d, out), [run])
        print("partition: both sides exited 4 (watchdog noticed by ranks %s), job %s resumed "
              "from step %d, the last committed; whole test %.1f s" %
              (noticed, job["id"], last_committed, time.time() - t0))
    finally:
        c.teardown()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
