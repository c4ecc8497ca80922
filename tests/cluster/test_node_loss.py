#!/usr/bin/env python3
"""Scenario 1, power loss of a node: `flam train` on 3 nodes x 2 ranks of the namespace cluster
(scripts/slurm-cluster.sh); after step KILL_AFTER node fn3 loses its link and every process in
its namespace (slurmd, slurmstepd, both ranks) gets SIGKILL. Asserts:
  - the job ends promptly: the survivors' watchdog (train.checkpoint.watchdog_seconds, short
    here) aborts with exit 4, and Slurm marks fn3 DOWN and ends the job NODE_FAIL (or FAILED);
  - `flam watch` resubmits; the run's `slurm.min_nodes: 2` lets the new job start on fn1 and fn2,
    so it runs 4 ranks, reshards the checkpoint 6 -> 4 and resumes from its step;
  - the run completes with the same exported parameters, the same final loader states (so the
    same samples, each read once per epoch as pipeline/loader.h promises) and the same losses
    after the resume as a reference run on local MPI ranks: 6 ranks up to that step, then 4.
Prints the detection and recovery times. Skips (77) when the cluster cannot start here."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as c  # noqa: E402

STEPS = 8
KILL_AFTER = 4
CHECKPOINT_EVERY = 2
TIMEOUT = 4  # watchdog and collective timeout, seconds


def main():
    tmp = c.setup(3)
    try:
        t_start = time.time()
        common = c.tiny_run(tmp, STEPS, CHECKPOINT_EVERY, TIMEOUT)
        run = os.path.join(tmp, "loss")
        c.flam("submit", "--config", os.path.join(c.SRC, "configs", "tiny.yaml"),
               *c.sets(common + c.slurm_sets(run, "c-loss", 3, min_nodes=2)))
        watcher = c.watch(run)
        c.wait_step(run, KILL_AFTER, watcher)
        # The job running now: the last one submitted (an earlier one may have been lost at
        # start-up, an OpenMPI TCP connect failure, and resubmitted by the watch).
        k = len(c.state(run)["jobs"]) - 1
        first = c.state(run)["jobs"][k]["id"]
        t_kill = time.time()
        c.cluster("kill", 3)
        print("node fn3 killed after step %d of job %s" % (c.resume.metrics(run)[-1]["step"],
                                                           first))
        ended = resubmitted = None
        while resubmitted is None and time.time() - t_kill < 120:
            jobs = c.state(run)["jobs"]
            if ended is None and jobs[k].get("state") in ("FAILED", "NODE_FAIL", "COMPLETED"):
                ended = time.time() - t_kill
            if len(jobs) > k + 1:
                resubmitted = time.time() - t_kill
            time.sleep(0.1)
        rc = c.finish(watcher)
        if rc != 0:
            c.fail("watch after the node loss exited %d" % rc, [run])
        s = c.state(run)
        jobs = s["jobs"]
        if not (s["status"] == "completed" and len(jobs) >= k + 2 and
                jobs[k]["state"] in ("NODE_FAIL", "FAILED") and
                "resubmitting" in jobs[k]["decision"] and jobs[-1]["exit_code"] == 0):
            c.fail("state after the node loss: %s" % json.dumps(s, indent=1), [run])
        first_log, second_log = c.job_log(run, jobs[k]["id"]), c.job_log(run, jobs[-1]["id"])
        watchdog = "silent for" in first_log
        if jobs[k]["state"] != "NODE_FAIL" and not watchdog:
            c.fail("the killed job ended neither NODE_FAIL nor by the watchdog", [run])
        if "on 4 ranks" not in second_log or "fn[1-2]" not in second_log:
            c.fail("the resubmitted job did not run 4 ranks on fn1 and fn2", [run])
        m = re.search(r"resumed from \S*step_(\d+)", second_log)
        if not m or "resharding from 6 to 4" not in second_log:
            c.fail("the resubmitted job did not reshard a checkpoint 6 -> 4", [run])
        resumed = int(m.group(1))
        if not KILL_AFTER - CHECKPOINT_EVERY <= resumed <= KILL_AFTER + 1:
            c.fail("resumed from step %d, not the last checkpoint before the kill" % resumed,
                   [run])
        t_cluster = time.time() - t_start
        print("job %s ended %s%s %.1f s after the kill; resubmitted after %.1f s; resumed from "
              "step %d on 4 ranks" % (jobs[k]["id"], jobs[k]["state"],
                                      " (watchdog, exit 4)" if watchdog else "",
                                      ended or -1, resubmitted or -1, resumed))

        # The reference: 6 local ranks up to the resumed step, then 4 to the end.
        ref = os.path.join(tmp, "reference")
        upto = [x for x in common if not x.startswith("train.steps=")]
        c.mpirun(6, ref, upto + ["train.steps=%d" % resumed])
        c.mpirun(4, ref, common)
        got = c.resume.exported(run, os.path.join(tmp, "run.safetensors"))
        want = c.resume.exported(ref, os.path.join(tmp, "ref.safetensors"))
        if got.keys() != want.keys() or any(got[k] != want[k] for k in got):
            c.fail("the exported parameters differ from the 6 -> 4 reference's", [run])
        states = c.loader_states(run, STEPS)
        if len(states) != 4 or None in sum(states, ()) or states != c.loader_states(ref, STEPS):
            c.fail("the final loader states differ from the reference's:\n%s" % states, [run])
        ref_loss = {r["step"]: (r["loss_laion"], r["loss_mmc4"]) for r in c.resume.metrics(ref)}
        rows = c.resume.metrics(run)
        # The last job's lines: from the last time the step after the resumed one was logged.
        first = max(i for i, r in enumerate(rows) if r["step"] == resumed + 1)
        after = rows[first:]
        if [r["step"] for r in after] != list(range(resumed + 1, STEPS + 1)):
            c.fail("steps logged after the resume: %s" % [r["step"] for r in after], [run])
        for r in after:
            if (r["loss_laion"], r["loss_mmc4"]) != ref_loss[r["step"]]:
                c.fail("step %d loss differs from the reference's" % r["step"], [run])
        print("node loss: %d tensors, loader states and %d losses equal the 6 -> 4 reference's"
              % (len(got), len(after)))
        print("timing: cluster part %.1f s, whole test %.1f s" % (t_cluster,
                                                                   time.time() - t_start))
    finally:
        c.teardown()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
