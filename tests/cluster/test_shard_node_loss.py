#!/usr/bin/env python3
"""Scenario 4, `flam shard` loses a node: a 3 nodes x 2 ranks shard job (flam submit --job shard)
downloads tests/shard/fixture.py's URL table from tests/common/http_server.py, which listens on
the bridge address 10.77.0.1 (the nodes' only way out of their namespaces); fn3's link is
rate-limited so that its shards take longer. As soon as the first shard is done, node fn3
loses power. Asserts:
  - Slurm ends the job (NODE_FAIL or a failure) and `flam watch` resubmits it; `slurm.min_nodes:
    2` starts the new job on fn1 and fn2 (4 ranks);
  - the rerun redoes only what had no stats file when the first job ended: at most the two
    shards fn3's ranks held (the survivors finish theirs before Slurm ends the job), and the
    shards done before keep their files untouched (same inode and mtime);
  - every output file (tar, parquet, rows; not the stats files, which hold timings) is
    byte-identical to a clean one-process local run's.
Prints the times. Skips (77) when the cluster cannot start here."""
import filecmp
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as c  # noqa: E402

ROWS = 60  # 12 shards of 5 rows: 2 per rank; every 4th row drips for 4 s


def products(d):
    return sorted(f for f in os.listdir(d) if f != "summary.json" and not f.endswith(".tmp"))


def main():
    tmp = c.setup(3)
    try:
        t0 = time.time()
        fixture = os.path.join(c.SRC, "tests", "shard", "fixture.py")
        www = os.path.join(tmp, "www")
        subprocess.run([sys.executable, fixture, "files", www], check=True)
        port_file = os.path.join(tmp, "port")
        server = subprocess.Popen([sys.executable, os.path.join(c.SRC, "tests", "common",
                                                                "http_server.py"),
                                   "--root", www, "--host", "10.77.0.1", "--port-file",
                                   port_file], stdout=subprocess.DEVNULL)
        c.background.append(server)
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.1)
        port = open(port_file).read().strip()
        table = os.path.join(tmp, "many.tsv")
        subprocess.run([sys.executable, fixture, "many", port, table, str(ROWS)], check=True)
        with open(table) as f:
            rows = f.read().replace("127.0.0.1", "10.77.0.1")
        with open(table, "w") as f:
            f.write(rows)
        config = os.path.join(tmp, "shard.yaml")
        clean, out = os.path.join(tmp, "clean"), os.path.join(tmp, "out")
        c.shard_config(config, table, clean)
        t_clean = time.time()
        c.flam("shard", "--config", config, timeout=300)
        t_clean = time.time() - t_clean

        # fn3's link is slow (a token bucket), so that when the first shard is done elsewhere
        # fn3's ranks are surely still inside theirs.
        c.cluster("slow", 3, "tbf", "rate", "256kbit", "burst", "32kbit", "latency", "2s")
        run = os.path.join(tmp, "shard-run")
        c.flam("submit", "--config", config, "--job", "shard",
               *c.sets(c.slurm_sets(run, "c-shard", 3, min_nodes=2) +
                       ["shard.output_dir=" + out]))
        watcher = c.watch(run)
        deadline = time.time() + 120
        while time.time() < deadline:
            if os.path.isdir(out) and any(f.endswith("_stats.json") for f in os.listdir(out)):
                break
            if watcher.poll() is not None:
                c.fail("the shard run ended before any shard was done", [run])
            time.sleep(0.02)
        # The job running now (an earlier one may have been lost at start-up and resubmitted).
        k = len(c.state(run)["jobs"]) - 1
        t_kill = time.time()
        c.cluster("kill", 3)
        done_before = None
        while time.time() - t_kill < 120:
            jobs = c.state(run)["jobs"]
            if len(jobs) > k + 1:
                break
            if jobs[k].get("state") in ("NODE_FAIL", "FAILED"):
                done_before = {f: os.stat(os.path.join(out, f)) for f in products(out)}
            time.sleep(0.05)
        t_resubmit = time.time() - t_kill
        rc = c.finish(watcher)
        if rc != 0:
            c.fail("watch of the shard run exited %d" % rc, [run])
        s = c.state(run)
        jobs = s["jobs"]
        if not (s["status"] == "completed" and len(jobs) >= k + 2 and
                jobs[k]["state"] in ("NODE_FAIL", "FAILED") and jobs[-1]["exit_code"] == 0):
            c.fail("state of the shard run: %s" % json.dumps(s, indent=1), [run])
        second = c.job_log(run, jobs[-1]["id"])
        m = re.search(r"(\d+) shards \((\d+) done before\), (\d+) ranks", second)
        if not m or m.group(3) != "4":
            c.fail("the rerun did not run 4 ranks", [run])
        total, skipped = int(m.group(1)), int(m.group(2))
        stats_before = sorted(f for f in done_before or {} if f.endswith("_stats.json"))
        if len(stats_before) != skipped or not 1 <= total - skipped <= 2:
            c.fail("the rerun skipped %d of %d shards; %d had stats when the first job ended" %
                   (skipped, total, len(stats_before)), [run])
        for f, st in (done_before or {}).items():
            prefix = f.split("_")[0].split(".")[0]
            if any(b.startswith(prefix) for b in stats_before):
                now = os.stat(os.path.join(out, f))
                if (now.st_ino, now.st_mtime_ns) != (st.st_ino, st.st_mtime_ns):
                    c.fail("%s, done before the node loss, was rewritten" % f, [run])
        # Byte for byte: every product but the stats files, which hold timings.
        def compared(d):
            return [f for f in products(d) if not f.endswith("_stats.json")]
        names = compared(clean)
        if compared(out) != names or not any(n.endswith(".tar") for n in names):
            c.fail("files differ: clean %s, cluster %s" % (names, compared(out)), [run])
        for n in names:
            if not filecmp.cmp(os.path.join(clean, n), os.path.join(out, n), shallow=False):
                c.fail("%s differs from the clean run's" % n, [run])
        print("shard node loss: %d shards, %d redone on 2 nodes, %d files identical to the "
              "clean run; resubmitted %.1f s after the kill; clean local run %.1f s; whole test "
              "%.1f s" % (total, total - skipped, len(names), t_resubmit, t_clean,
                          time.time() - t0))
    finally:
        c.teardown()
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
