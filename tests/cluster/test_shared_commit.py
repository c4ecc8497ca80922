#!/usr/bin/env python3
"""Scenario 5, a node lost during a checkpoint commit, checkpoints in a directory that every node
sees. On a real cluster that is NFS or Lustre; here every network namespace already shares this
machine's file system, so one plain directory (the same path on every node) plays the shared
mount: nothing else is emulated. ckpt_tool (tests/checkpoint/ckpt_tool.cpp, the real
Checkpointer on synthetic state) runs as a 3 nodes x 2 ranks `srun --mpi=pmix` step:
  1. saves step 10 (small) and commits it;
  2. saves step 20, large enough (~700 MB over 6 ranks) that writing takes far longer than the
     kill below (at ~30 MB the commit sometimes finished first); as soon as step_00000020.tmp/
     holds a rank file, node fn1 (rank 0, the one that would write the manifest and rename)
     loses power (scripts/slurm-cluster.sh kill 1);
  3. asserts step 20 was not committed (no step_00000020/, `latest` still names step 10), and
     a 2-node (4-rank) step on the surviving nodes loads step 10, resharded 6 -> 4, with every
     slice and loader state as written, and removes the partial directory.
Prints the times. Skips (77) when the cluster cannot start here."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as c  # noqa: E402

TOOL = os.environ.get("FLAM_CKPT_TOOL") or os.path.join(os.environ["FLAM_BUILD_DIR"], "tests",
                                                        "checkpoint", "ckpt_tool")


def srun(nodes, args, nodelist=None):
    argv = ["srun", "-N", str(nodes), "--ntasks-per-node=2", "--mpi=pmix", "--kill-on-bad-exit=1"]
    if nodelist:
        argv += ["-w", nodelist]
    env = dict(os.environ)
    env.update(e.split("=", 1) for e in c.JOB_ENV)
    return argv + [TOOL] + args, env


def main():
    tmp = c.setup(3)
    try:
        t0 = time.time()
        shared = os.path.join(tmp, "shared")
        argv, env = srun(3, ["save", "--run", shared, "--step", "10", "--scale", "5"])
        proc = c.run_step(argv, env, "the first save")
        if proc.returncode != 0 or "SAVE step 10 committed" not in proc.stdout:
            c.fail("the first save: exit %d\n%s%s" % (proc.returncode, proc.stdout, proc.stderr))
        ckpts = os.path.join(shared, "checkpoints")
        partial = os.path.join(ckpts, "step_00000020.tmp")
        argv, env = srun(3, ["save", "--run", shared, "--step", "20", "--scale", "50000"])
        for attempt in range(1, c.MPI_CONNECT_TRIES + 1):
            save = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            c.background.append(save)
            deadline = time.time() + 120
            while time.time() < deadline and save.poll() is None:
                if os.path.isdir(partial) and any(f.startswith("rank_")
                                                  for f in os.listdir(partial)):
                    break
                time.sleep(0.002)
            if save.poll() is None:
                break
            early = save.stdout.read()
            if not c.mpi_connect_failed(early) or attempt == c.MPI_CONNECT_TRIES:
                c.fail("the second save ended before node fn1 could be killed:\n" + early)
            print("the second save: OpenMPI's TCP connect failed (attempt %d of %d); running it "
                  "again" % (attempt, c.MPI_CONNECT_TRIES))
        t_kill = time.time()
        c.cluster("kill", 1)
        out, _ = save.communicate(timeout=120)
        ended = time.time() - t_kill
        print(out[-1500:])
        if save.returncode == 0 or "SAVE step 20 committed" in out:
            c.fail("the save interrupted by the node loss succeeded")
        if os.path.exists(os.path.join(ckpts, "step_00000020")):
            c.fail("step 20 was committed although its manifest writer died")
        with open(os.path.join(ckpts, "latest")) as f:
            latest = f.read().strip()
        if latest != "step_00000010":
            c.fail("latest names %s, not step_00000010" % latest)
        print("node fn1 killed mid-commit: the step ended (exit %d) %.1f s later; latest still "
              "step_00000010" % (save.returncode, ended))
        argv, env = srun(2, ["resume", "--run", shared, "--expect-step", "10", "--scale", "5"],
                         "fn[2-3]")
        proc = c.run_step(argv, env, "the resume")
        print(proc.stdout, end="")
        if proc.returncode != 0 or "LOADED step 10 from 6 ranks into 4: ok" not in proc.stdout:
            c.fail("resume on the surviving nodes: exit %d\n%s%s" % (proc.returncode, proc.stdout,
                                                                    proc.stderr[-3000:]))
        if os.path.exists(partial):
            c.fail("the partial step_00000020.tmp/ was not cleaned up")
        print("timing: whole test %.1f s" % (time.time() - t0))
    finally:
        c.teardown()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
