"""What the tests of tests/cluster/ share: the namespace cluster of scripts/slurm-cluster.sh
(started by the test, stopped when it ends), a tiny training run whose corpus has enough shards
for every rank of 6 to own some (so that no sample is read twice by design), `flam submit` /
`flam watch` on it, and failure reports with the logs' tails."""
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

SRC = os.environ["FLAM_SOURCE_DIR"]
FLAM = os.environ["FLAM_BIN"]
CLUSTER = os.path.join(SRC, "scripts", "slurm-cluster.sh")
MPIEXEC = os.environ.get("MPIEXEC") or "mpirun"
sys.path.insert(0, os.path.join(SRC, "tests", "checkpoint"))
sys.path.insert(0, os.path.join(SRC, "tests", "train"))
import test_resume_e2e as resume  # noqa: E402  (tiny_run, metrics, exported)
import test_train_e2e as corpus  # noqa: E402  (make_corpus, make_tokenizer)
sys.path.insert(0, os.path.join(SRC, "tests", "common"))
from slurm_jobs import (background, fail, finish, flam, job_log, sets, shard_config,  # noqa: E402,F401
                        state, wait_step, watch)

SUBNET = "10.77.0.0/24"
# OpenMPI between the nodes: TCP on the bridge subnet only, no shared memory; root allowed;
# ranks that wait yield the CPU, and each rank computes on one thread: the nodes share this
# machine's cores (6 ranks with a thread per core each run 20x slower), and the references run
# the same way so that their sums are the same.
JOB_ENV = ["OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMPI_MCA_btl=tcp,self",
           "OMPI_MCA_btl_tcp_if_include=" + SUBNET, "OMPI_MCA_oob_tcp_if_include=" + SUBNET,
           "OMPI_MCA_mpi_yield_when_idle=1", "OMP_NUM_THREADS=1"]
SHARDS = 12  # per dataset: 2 per rank at 6 ranks, 3 at 4
# What OpenMPI 4.1's TCP transport prints when a rank dies while the ranks of a step first
# connect (a segfault inside OpenMPI, then a reset connection), as seen now and then in CI.
MPI_CONNECT_FAILURE = ("Open MPI failed to TCP connect", "mca_btl_tcp_recv_blocking")
MPI_CONNECT_TRIES = 3

tmp = None


def mpi_connect_failed(output):
    """Whether `output` (a failed step's) shows OpenMPI's TCP transport failing as the ranks
    connected: a failure of the transport, not of what a test checks, and so worth a retry."""
    return any(sign in output for sign in MPI_CONNECT_FAILURE)


def lost_at_start(run, job):
    """Whether `job` (an entry of RUN/state.json's jobs) failed before its first checkpoint as
    OpenMPI's TCP transport failed while its ranks connected (mpi_connect_failed on its Slurm
    log): the watch resubmits such a job, and it is not the fault a test provokes."""
    return (job.get("exit_code") != 0 and job.get("step_at_end", -1) < 0 and
            mpi_connect_failed(job_log(run, job["id"])))


def run_step(argv, env, what, timeout=120):
    """Runs one step to its end (subprocess.run); a step that fails as the ranks connect
    (mpi_connect_failed) is run again, up to MPI_CONNECT_TRIES in all."""
    for attempt in range(1, MPI_CONNECT_TRIES + 1):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 0 or not mpi_connect_failed(proc.stdout + proc.stderr):
            return proc
        print("%s: OpenMPI's TCP connect failed (attempt %d of %d); running it again" %
              (what, attempt, MPI_CONNECT_TRIES))
    return proc

def cluster(*args, check=True):
    proc = subprocess.run(["bash", CLUSTER] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=120)
    if check and proc.returncode != 0:
        fail("slurm-cluster.sh %s exited %d:\n%s%s" % (" ".join(map(str, args)),
                                                      proc.returncode, proc.stdout, proc.stderr))
    return proc


def split_shards(paths, out, prefix, count):
    """Rewrites the samples of `paths` (tar shards) as `count` shards in `out`, whole samples
    (all members of one key) kept together and in order; returns the new paths."""
    samples = []
    for path in paths:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key = member.name.split(".")[0]
                if not samples or samples[-1][0] != key:
                    samples.append((key, []))
                samples[-1][1].append((member, tar.extractfile(member).read()))
    per = -(-len(samples) // count)
    new = []
    for s in range(count):
        path = os.path.join(out, "%s-%05d.tar" % (prefix, s))
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for _, members in samples[s * per:(s + 1) * per]:
                for member, data in members:
                    info = tarfile.TarInfo(member.name)
                    info.size = len(data)
                    info.mtime = member.mtime
                    tar.addfile(info, __import__("io").BytesIO(data))
        new.append(path)
    return new


def tiny_run(out, steps, checkpoint_every, timeout_seconds):
    """The --set list of tests/checkpoint/test_resume_e2e.py's tiny run with its corpus split
    into SHARDS shards per dataset, the watchdog and collective timeouts at `timeout_seconds`."""
    common, _ = resume.tiny_run(out, steps, checkpoint_every)
    laion, mmc4 = corpus.make_corpus(out)
    split = os.path.join(out, "split")
    os.makedirs(split, exist_ok=True)
    laion = split_shards(laion, split, "laion", SHARDS)
    mmc4 = split_shards(mmc4, split, "mmc4", SHARDS)
    common = [c for c in common if not c.startswith(("data.laion.shards", "data.mmc4.shards"))]
    return common + ["data.laion.shards=[%s]" % ",".join(laion),
                     "data.mmc4.shards=[%s]" % ",".join(mmc4),
                     "train.checkpoint.watchdog_seconds=%g" % timeout_seconds,
                     "train.comm_timeout_seconds=%g" % timeout_seconds]


def slurm_sets(run, name, nodes, min_nodes=0):
    return ["run.dir=" + run, "run.name=" + name, "slurm.nodes=%d" % nodes] + (
        ["slurm.min_nodes=%d" % min_nodes] if min_nodes else []) + [
            "slurm.ntasks_per_node=2",
            "slurm.time=00:10:00", "slurm.poll_seconds=0.3", "slurm.backoff_seconds=1",
            "slurm.max_restarts=3", "slurm.env=[%s]" % ", ".join('"%s"' % e for e in JOB_ENV)]


def mpirun(ranks, run, common, expect=0):
    """`flam train` on `ranks` local MPI ranks (the reference runs), over TCP as the jobs."""
    argv = [MPIEXEC, "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
            "--mca", "btl", "tcp,self", "--mca", "mpi_yield_when_idle", "1",
            "-x", "OMP_NUM_THREADS=1", FLAM, "train",
            "--config", os.path.join(SRC, "configs", "tiny.yaml")] + sets(common + ["run.dir=" + run])
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    proc = run_step(argv, env, "flam train on %d ranks" % ranks, timeout=300)
    if proc.returncode != expect:
        fail("flam train on %d ranks exited %d, want %d:\n%s\n%s" %
             (ranks, proc.returncode, expect, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def loader_states(run, step):
    """The loader states (pipeline::Loader::state(), JSON) kept in the rank files of RUN's
    checkpoint of `step`, in rank order: [(laion, mmc4), ...]."""
    folder = os.path.join(run, "checkpoints", "step_%08d" % step)
    states = []
    for name in sorted(f for f in os.listdir(folder) if f.startswith("rank_")):
        with open(os.path.join(folder, name), "rb") as f:
            found = re.findall(rb'\{"buffer":.*?"world_size":\d+\}', f.read())
        by_kind = {json.loads(s)["kind"]: json.loads(s) for s in found}
        states.append((by_kind.get("laion"), by_kind.get("mmc4")))
    return states


def setup(nodes):
    """Starts the cluster (repairing what a killed test left) and makes the scratch dir."""
    global tmp
    if os.geteuid() != 0:
        print("SKIP: the namespace cluster needs root")
        sys.exit(77)
    start = subprocess.run(["bash", CLUSTER, "up", str(nodes)], capture_output=True, text=True)
    if start.returncode != 0:
        print(start.stderr)
        print("SKIP: the namespace cluster could not start here (above)")
        sys.exit(77)
    for line in cluster("env").stdout.splitlines():
        key, value = line.replace("export ", "", 1).split("=", 1)
        os.environ[key] = value
    tmp = tempfile.mkdtemp(prefix="flam_cluster_test.")
    return tmp


def teardown():
    for proc in background:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    subprocess.run(["bash", CLUSTER, "down"], capture_output=True)
    if tmp and not os.environ.get("FLAM_KEEP_TMP"):
        shutil.rmtree(tmp, ignore_errors=True)
