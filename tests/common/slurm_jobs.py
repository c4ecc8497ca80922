"""What the Slurm tests share (tests/orchestrator/test_slurm_orchestrator.py on one local node,
tests/cluster/ on the namespace cluster): `flam` and `flam watch` as subprocesses, the run's
state.json and job logs, waiting for a logged step, and failure reports with the logs' tails;
the one-node local Slurm of the tests that run on it (local_slurm). FLAM_BIN names the binary.
Processes started in the background are kept in `background` for the test's clean-up."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FLAM = os.environ["FLAM_BIN"]
sys.path.insert(0, os.path.join(os.environ["FLAM_SOURCE_DIR"], "tests", "checkpoint"))
import test_resume_e2e as resume  # noqa: E402  (metrics)

background = []  # Popen objects the test ends on exit
SLURM_LOCAL = os.path.join(os.environ["FLAM_SOURCE_DIR"], "scripts", "slurm-local.sh")
# The JOB_ENV entries every local Slurm job needs: OpenMPI refuses root without the first two.
JOB_ENV = ["OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
           "OMPI_MCA_btl_vader_single_copy_mechanism=none"]


@contextlib.contextmanager
def local_slurm(prefix):
    """scripts/slurm-local.sh's one-node Slurm, the test's own (FLAM_SLURM_TEST_DIR, default
    /tmp/flam-slurm-test, and FLAM_SLURM_TEST_CTLD_PORT / _SLURMD_PORT, default 16827 / 16828, so
    that it never stops the demo's or a user's), started with its client environment exported
    here; exits 77 saying SKIP when slurmctld cannot start. Yields a scratch directory named
    PREFIX...; on the way out ends the `background` processes, stops Slurm and removes the
    directory (FLAM_KEEP_TMP keeps it)."""
    os.environ["FLAM_SLURM_DIR"] = os.environ.get("FLAM_SLURM_TEST_DIR", "/tmp/flam-slurm-test")
    os.environ["FLAM_SLURM_CTLD_PORT"] = os.environ.get("FLAM_SLURM_TEST_CTLD_PORT", "16827")
    os.environ["FLAM_SLURM_SLURMD_PORT"] = os.environ.get("FLAM_SLURM_TEST_SLURMD_PORT", "16828")
    if subprocess.run(["bash", SLURM_LOCAL, "start"]).returncode != 0:
        print("SKIP: slurmctld could not start on this machine (reasons above); Slurm tests not "
              "run")
        sys.exit(77)
    scratch = tempfile.mkdtemp(prefix=prefix)
    try:
        env = subprocess.run(["bash", SLURM_LOCAL, "env"], capture_output=True, text=True,
                             check=True).stdout
        for line in env.splitlines():
            key, value = line.replace("export ", "", 1).split("=", 1)
            os.environ[key] = value
        yield scratch
    finally:
        for proc in background:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["bash", SLURM_LOCAL, "stop"])
        if os.environ.get("FLAM_KEEP_TMP"):
            print("kept " + scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def fail(message, runs=()):
    """Prints why and the tails of the runs' logs (orchestrator.log, jobs/*.out), then exits 1."""
    print("FAIL: " + message)
    for run in runs:
        jobs = os.path.join(run, "jobs")
        logs = [os.path.join(run, "orchestrator.log")] + sorted(
            os.path.join(jobs, f) for f in (os.listdir(jobs) if os.path.isdir(jobs) else [])
            if f.endswith(".out"))
        for path in logs:
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    print("--- %s\n%s" % (path, "".join(f.readlines()[-30:])))
    sys.exit(1)


def flam(*args, check=True, timeout=120):
    proc = subprocess.run([FLAM] + list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        fail("flam %s exited %d:\n%s%s" % (" ".join(args), proc.returncode, proc.stdout,
                                           proc.stderr[-4000:]))
    return proc


def sets(pairs):
    """["k=v", ...] -> ["--set", "k=v", ...]"""
    argv = []
    for p in pairs:
        argv += ["--set", p]
    return argv


def state(run):
    with open(os.path.join(run, "state.json")) as f:
        return json.load(f)


def job_log(run, job_id):
    """RUN/jobs/slurm-JOB.out, or "" before Slurm has created it."""
    path = os.path.join(run, "jobs", "slurm-%s.out" % job_id)
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def watch(run):
    """`flam watch RUN` in the background; returns the Popen (stdout and stderr together)."""
    proc = subprocess.Popen([FLAM, "watch", run], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    background.append(proc)
    return proc


def finish(proc, timeout=300):
    """Waits for a `watch` and prints its output; returns its exit code."""
    out, _ = proc.communicate(timeout=timeout)
    print(out, end="")
    return proc.returncode


def wait_step(run, step, watcher, timeout=300):
    """Until RUN/metrics.jsonl shows `step`; the watch (unless None) must not end first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = resume.metrics(run)
        if rows and rows[-1]["step"] >= step:
            return rows[-1]["step"]
        if watcher is not None and watcher.poll() is not None:
            fail("the run ended before step %d:\n%s" % (step, watcher.stdout.read()), [run])
        time.sleep(0.02)
    fail("%s never reached step %d" % (run, step), [run])


def shard_config(path, table, out):
    """The `shard:` section tests/shard/lib.sh writes (URL table `table`, output `out`), with a
    total timeout long enough that a slowed-down (drip-fed) image never times out on a loaded
    machine."""
    with open(path, "w") as f:
        f.write("""shard:
  inputs: ["%s"]
  output_dir: "%s"
  progress_seconds: 1
  save_cols: [expect, n]
  transform_threads: 1
  samples_per_shard: 5
  download:
    connect_timeout_seconds: 5
    total_timeout_seconds: 30
    retries: 1
    retry_backoff_seconds: 0.2
    max_body_bytes: 2000000
    concurrency: 16
    per_host_connections: 8
  transform:
    min_image_size: 32
    max_aspect_ratio: 4
""" % (table, out))
