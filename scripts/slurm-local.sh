#!/usr/bin/env bash
# slurm-local.sh start|stop|status|env: a one-node Slurm cluster on this machine, for tests and
# the demo. Everything (slurm.conf, munge socket and key, state, logs, spool) lives in one private
# directory, $FLAM_SLURM_DIR (default /tmp/flam-slurm), with its own ports, so it neither needs
# nor touches /etc/slurm. Clients find it through SLURM_CONF: run
#   eval "$(scripts/slurm-local.sh env)"
# after `start`. Runs the daemons as root (they must be, to launch jobs as the submitting user).
#
# `start` is idempotent: when the cluster answers it returns at once; when a previous instance
# died (stale pid files, half-dead daemons) it kills what is left and starts afresh, clearing the
# job state. Exit status: 0 when the node is idle, 1 when the cluster could not start (the reason
# and the log tails are printed), 2 on bad usage.
set -u

DIR="${FLAM_SLURM_DIR:-/tmp/flam-slurm}"
CTLD_PORT="${FLAM_SLURM_CTLD_PORT:-16817}"
SLURMD_PORT="${FLAM_SLURM_SLURMD_PORT:-16818}"
CONF="$DIR/slurm.conf"
NODE="$(hostname -s)"
# Declare more CPUs than the machine has so that tests with several ranks (and a job beside
# another) fit on small CI machines; oversubscription is what a test cluster wants.
CPUS="${FLAM_SLURM_CPUS:-$(($(nproc) < 8 ? 8 : $(nproc)))}"

# shellcheck source=scripts/slurm-conf.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-conf.sh"

log() { echo "slurm-local: $*" >&2; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

pid_of() { [[ -f "$DIR/$1.pid" ]] && cat "$DIR/$1.pid" 2>/dev/null; }

env_lines() { echo "export SLURM_CONF=$CONF"; }

write_conf() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
  chmod 755 "$DIR/munge"
  local mem_mb
  mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  {
    cat <<EOF
# Written by scripts/slurm-local.sh: a one-node test cluster on localhost.
ClusterName=flamlocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmdSpoolDir=$DIR/spool
SlurmdPidFile=$DIR/slurmd.pid
SlurmdLogFile=$DIR/log/slurmd.log
# Slurm's default: a step being ended gets SIGTERM, then SIGKILL this many seconds later. Kept at
# the default so that tests see what a real cluster does to a rank that outlives SIGTERM.
KillWait=30
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
    slurm_conf_common "$DIR" "$CTLD_PORT" "$SLURMD_PORT"
  } >"$CONF"
}

kill_daemons() {
  local name pid
  for name in slurmd slurmctld munged; do
    pid="$(pid_of "$name")"
    if pid_alive "$pid"; then
      kill "$pid" 2>/dev/null
      for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
      pid_alive "$pid" && kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$DIR/$name.pid"
  done
}

node_state() {
  SLURM_CONF="$CONF" timeout 10 sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1
}

healthy() {
  [[ -f "$CONF" ]] && pid_alive "$(pid_of slurmctld)" && pid_alive "$(pid_of slurmd)" &&
    pid_alive "$(pid_of munged)" && [[ "$(node_state)" =~ ^(idle|mixed|allocated) ]]
}

fail() {
  log "cannot start: $*"
  for f in "$DIR/log/munged.log" "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
    [[ -f "$f" ]] && { echo "--- tail $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}

start() {
  if healthy; then
    log "already running (SLURM_CONF=$CONF)"
    return 0
  fi
  for bin in munged slurmctld slurmd sinfo; do
    command -v "$bin" >/dev/null || fail "$bin not installed (apt-get install munge slurmctld slurmd slurm-client)"
  done
  [[ "$(id -u)" == 0 ]] || fail "the daemons must run as root (this is uid $(id -u))"
  kill_daemons
  rm -rf "$DIR/state" "$DIR/spool"
  write_conf

  local key="$DIR/munge/munge.key"
  if [[ ! -s "$key" ]]; then
    dd if=/dev/urandom of="$key" bs=1 count=1024 status=none || fail "cannot write $key"
    chmod 400 "$key"
  fi
  munged --force --socket="$DIR/munge/munge.socket" --key-file="$key" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed" >>"$DIR/log/munged.log" 2>&1 ||
    fail "munged did not start"

  SLURM_CONF="$CONF" slurmctld -c -f "$CONF" >>"$DIR/log/slurmctld.stderr" 2>&1 ||
    fail "slurmctld did not start"
  SLURM_CONF="$CONF" slurmd -f "$CONF" -N "$NODE" >>"$DIR/log/slurmd.stderr" 2>&1 ||
    fail "slurmd did not start"

  local state=""
  for _ in $(seq 60); do
    state="$(node_state)"
    [[ "$state" =~ ^idle ]] && break
    if [[ "$state" =~ ^(down|drain) ]]; then
      SLURM_CONF="$CONF" scontrol update nodename="$NODE" state=resume >/dev/null 2>&1
    fi
    sleep 0.5
  done
  [[ "$state" =~ ^idle ]] || fail "node $NODE is '${state:-not listed}', not idle, after 30 s"
  log "running: node $NODE idle, $CPUS CPUs (SLURM_CONF=$CONF)"
}

case "${1:-}" in
  start) start ;;
  stop)
    kill_daemons
    log "stopped"
    ;;
  status)
    if healthy; then
      echo "running: node $NODE $(node_state) (SLURM_CONF=$CONF)"
    else
      echo "not running"
      exit 1
    fi
    ;;
  env) env_lines ;;
  *)
    echo "usage: $0 start|stop|status|env   (FLAM_SLURM_DIR=$DIR)" >&2
    exit 2
    ;;
esac
