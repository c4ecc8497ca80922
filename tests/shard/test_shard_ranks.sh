#!/usr/bin/env bash
# Distribution and resume: 1, 2 and 3 ranks make the same shards; kill -9 of one rank, and of the
# whole job, mid-run, then a rerun, gives shards identical (byte for byte) to an uninterrupted run.
source "$(dirname "$0")/lib.sh"
MPI="${MPIEXEC:?} --oversubscribe --bind-to none"
start_server
"$PY" "$FIXTURE" many "$PORT" "$TMP/many.tsv" 40

config() {  # config NAME
  write_config "$TMP/$1.yaml" "$TMP/many.tsv" "$TMP/$1" "samples_per_shard: 5" \
    "transform_threads: 1"
}
config ref
"$FLAM" shard --config "$TMP/ref.yaml" 2>"$TMP/ref.log" || { cat "$TMP/ref.log"; exit 1; }
[ "$(ls "$TMP"/ref/*_stats.json | wc -l)" -eq 8 ]
for np in 2 3; do
  config np$np
  $MPI -np $np "$FLAM" shard --config "$TMP/np$np.yaml" 2>"$TMP/np$np.log" ||
    { cat "$TMP/np$np.log"; exit 1; }
  same_shards "$TMP/ref" "$TMP/np$np"
done

# wait_stats DIR N: until DIR has at least N stats files.
wait_stats() {
  for _ in $(seq 600); do
    [ "$(ls "$1" 2>/dev/null | grep -c _stats.json)" -ge "$2" ] && return 0
    sleep 0.05
  done
  echo "no progress in $1"; return 1
}
rank_pid() {  # rank_pid MPIRUN_PID RANK
  local p
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' </proc/"$p"/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"; return 0
    fi
  done
  return 1
}

# kill -9 of one rank: mpirun ends the job; the rerun finishes it.
config one
$MPI -np 2 "$FLAM" shard --config "$TMP/one.yaml" 2>"$TMP/one.log" &
job=$!
wait_stats "$TMP/one" 2
victim=$(rank_pid "$job" 1)
kill -9 "$victim"
if wait "$job"; then echo "the job survived a dead rank?"; fi
done_at_kill=$(ls "$TMP/one" | grep -c _stats.json)
echo "killed rank 1 with $done_at_kill shards done"
$MPI -np 2 "$FLAM" shard --config "$TMP/one.yaml" 2>"$TMP/one2.log" ||
  { cat "$TMP/one2.log"; exit 1; }
same_shards "$TMP/ref" "$TMP/one"

# kill -9 of the whole job (every rank and mpirun).
config all
$MPI -np 2 "$FLAM" shard --config "$TMP/all.yaml" 2>"$TMP/all.log" &
job=$!
wait_stats "$TMP/all" 3
kill -9 $(pgrep -P "$job") "$job" 2>/dev/null || true
wait "$job" 2>/dev/null || true
echo "killed the job with $(ls "$TMP/all" | grep -c _stats.json) shards done"
"$FLAM" shard --config "$TMP/all.yaml" 2>"$TMP/all2.log" || { cat "$TMP/all2.log"; exit 1; }
same_shards "$TMP/ref" "$TMP/all"
echo "shard ranks ok"
