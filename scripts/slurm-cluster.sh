#!/usr/bin/env bash
# slurm-cluster.sh up|down|status|env|kill|cut|restore|slow N|I [ARGS]: a multi-node Slurm
# cluster on this one machine, for the fault tests of tests/cluster/.
#
# Each node fnI (I = 1..N) is a network namespace flam-nI with its own address 10.77.0.(10+I)
# on a bridge flambr0 (10.77.0.1/24) in the root namespace, joined by a veth pair
# (flam-vI in the root namespace, eth0 inside). Each node runs its own slurmd inside its
# namespace (nsenter --net, plus a private mount namespace in which /etc/netns/flam-nI/hosts
# covers /etc/hosts, as `ip netns exec` does, so that this machine's host name resolves to the
# node's own address there), with its own spool, log and pid files; slurmctld (on the bridge
# address) and munged are shared. Jobs should run OpenMPI over TCP on the bridge subnet only:
#   OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=10.77.0.0/24
# (`env` prints these with SLURM_CONF); there is no shared-memory path between nodes. The file
# system is shared by every namespace, as NFS or Lustre would be on a real cluster.
#
#   up N         start (or repair) a cluster of N nodes; idempotent; a namespace, process,
#                link, qdisc or job left by a killed test is removed first. Exit 0 when all N
#                nodes are idle.
#   down         stop everything and remove the namespaces, links and /etc/netns entries.
#   status       one line per node (sinfo); exit 1 when the cluster is not running.
#   env          the shell lines a client needs (eval "$(scripts/slurm-cluster.sh env)").
#   kill I       power loss of node I: its link goes down, then every process in its namespace
#                (slurmd, slurmstepd, the ranks) gets SIGKILL. `up N` brings it back.
#   cut I        partition: node I's link goes down (its processes live on).
#   restore I    node I's link comes back up and any netem qdisc on it is removed.
#   slow I QDISC [ARGS]  a tc root qdisc on node I's link, both directions: `netem delay 20ms
#                loss 1%` where the kernel has sch_netem, else e.g. `tbf rate 4mbit burst 32kbit
#                latency 100ms` (a slow, queueing link). Exit 3 when the kernel lacks QDISC.
#
# Everything lives under $FLAM_CLUSTER_DIR (default /tmp/flam-cluster); the ports
# ($FLAM_CLUSTER_CTLD_PORT, default 16847; slurmd 16848 in each namespace) do not collide with
# scripts/slurm-local.sh. Runs as root (namespaces, daemons). Exit 2 on bad usage.
set -u

DIR="${FLAM_CLUSTER_DIR:-/tmp/flam-cluster}"
CTLD_PORT="${FLAM_CLUSTER_CTLD_PORT:-16847}"
SLURMD_PORT="${FLAM_CLUSTER_SLURMD_PORT:-16848}"
CONF="$DIR/slurm.conf"
BRIDGE=flambr0
PREFIX=10.77.0
SUBNET=$PREFIX.0/24
# Each node declares 4 CPUs: 2 ranks per node plus room for a shard job beside a train job.
CPUS="${FLAM_CLUSTER_CPUS:-4}"
# Seconds without an answer before slurmctld marks a node DOWN (and fails its jobs NODE_FAIL).
SLURMD_TIMEOUT="${FLAM_CLUSTER_SLURMD_TIMEOUT:-6}"

# shellcheck source=scripts/slurm-conf.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-conf.sh"

log() { echo "slurm-cluster: $*" >&2; }
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { [[ -f "$DIR/$1.pid" ]] && cat "$DIR/$1.pid" 2>/dev/null; }
ns() { echo "flam-n$1"; }
veth() { echo "flam-v$1"; }
addr() { echo "$PREFIX.$((10 + $1))"; }

env_lines() {
  echo "export SLURM_CONF=$CONF"
  echo "export FLAM_CLUSTER_SUBNET=$SUBNET"
}

# The node numbers of every flam-nI namespace that exists now.
existing_nodes() { ip netns list 2>/dev/null | sed -n 's/^flam-n\([0-9]\+\).*/\1/p' | sort -n; }

write_conf() {
  local n=$1
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/munge"
  chmod 755 "$DIR/munge"
  local mem_mb
  mem_mb=$(awk -v n="$n" '/MemTotal/ {print int($2 / 1024 * 0.9 / n)}' /proc/meminfo)
  {
    cat <<EOF
# Written by scripts/slurm-cluster.sh: $n nodes, each a network namespace on one machine.
ClusterName=flamcluster
SlurmctldHost=$(hostname -s)($PREFIX.1)
SlurmdSpoolDir=$DIR/spool/%n
# Each node's own scratch (PMIx puts its per-step directories there): the path is the same on
# every node, and each node's mount namespace puts its own folder over it.
TmpFS=$DIR/node-tmp
SlurmdPidFile=$DIR/slurmd.%n.pid
SlurmdLogFile=$DIR/log/slurmd.%n.log
KillWait=5
SlurmdTimeout=$SLURMD_TIMEOUT
# Short RPC timeouts, so that pings to a dead node fail (and it is marked DOWN) within seconds.
MessageTimeout=3
TCPTimeout=2
# Failed jobs are resubmitted by flam watch, not requeued by Slurm behind its back.
JobRequeue=0
EOF
    slurm_conf_common "$DIR" "$CTLD_PORT" "$SLURMD_PORT"
    local i
    for i in $(seq "$n"); do
      echo "NodeName=fn$i NodeAddr=$(addr "$i") CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=fn[1-$n] Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4"
  } >"$CONF"
}

kill_pid_file() {
  local file=$1 pid
  pid="$(cat "$file" 2>/dev/null)"
  if pid_alive "$pid"; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 30); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

# SIGKILL to every process in node I's namespace; waits until they are gone.
kill_namespace() {
  local name pids
  name=$(ns "$1")
  for _ in $(seq 50); do
    pids=$(ip netns pids "$name" 2>/dev/null)
    [[ -z "$pids" ]] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null
    sleep 0.1
  done
}

remove_node() {
  kill_namespace "$1"
  ip link del "$(veth "$1")" 2>/dev/null
  ip netns del "$(ns "$1")" 2>/dev/null
  rm -rf "/etc/netns/$(ns "$1")"
  rm -f "$DIR/slurmd.fn$1.pid"
}

down() {
  local i
  for i in $(existing_nodes); do remove_node "$i"; done
  for f in "$DIR"/slurmd.fn*.pid; do [[ -e "$f" ]] && kill_pid_file "$f"; done
  kill_pid_file "$DIR/slurmctld.pid"
  kill_pid_file "$DIR/munged.pid"
  ip link del "$BRIDGE" 2>/dev/null
  return 0
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge || return 1
  fi
  ip addr show dev "$BRIDGE" | grep -q "inet $PREFIX.1/24" ||
    ip addr add "$PREFIX.1/24" dev "$BRIDGE" || return 1
  ip link set "$BRIDGE" up
}

# Creates node I's namespace and link when missing, and brings the link up.
ensure_node() {
  local i=$1 name link
  name=$(ns "$i")
  link=$(veth "$i")
  if ! ip netns list | grep -qx "$name\( .*\)\?"; then
    ip link del "$link" 2>/dev/null
    ip netns add "$name" || return 1
  fi
  if ! ip link show "$link" >/dev/null 2>&1; then
    ip link add "$link" type veth peer name eth0 netns "$name" || return 1
    ip link set "$link" master "$BRIDGE" || return 1
  fi
  tc qdisc del dev "$link" root 2>/dev/null
  ip netns exec "$name" tc qdisc del dev eth0 root 2>/dev/null
  ip link set "$link" up
  ip netns exec "$name" ip link set lo up
  ip netns exec "$name" ip addr show dev eth0 | grep -q "inet $(addr "$i")/24" ||
    ip netns exec "$name" ip addr add "$(addr "$i")/24" dev eth0 || return 1
  ip netns exec "$name" ip link set eth0 up
  mkdir -p "/etc/netns/$name"
  {
    echo "127.0.0.1 localhost"
    echo "$(addr "$i") $(hostname) $(hostname -s) fn$i"
    local j
    for j in $(seq "$2"); do [[ $j == "$i" ]] || echo "$(addr "$j") fn$j"; done
    echo "$PREFIX.1 flamctl"
  } >"/etc/netns/$name/hosts"
}

node_states() { SLURM_CONF="$CONF" timeout 10 sinfo -h -N -o '%N %T' 2>/dev/null; }

fail() {
  log "cannot start: $*"
  for f in "$DIR"/log/*.log; do
    [[ -f "$f" ]] && { echo "--- tail $f" >&2; tail -n 10 "$f" >&2; }
  done
  exit 1
}

up() {
  local n=$1 i
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 up N" >&2; exit 2; }
  [[ "$(id -u)" == 0 ]] || fail "namespaces and daemons need root (this is uid $(id -u))"
  for bin in munged slurmctld slurmd sinfo ip tc; do
    command -v "$bin" >/dev/null || fail "$bin not installed (scripts/setup.sh installs it)"
  done
  # A cluster of another size, or one whose conf is gone: start afresh.
  if [[ ! -f "$CONF" ]] || [[ "$(grep -c '^NodeName=' "$CONF")" != "$n" ]]; then
    down
    rm -rf "$DIR/state" "$DIR/spool"
  fi
  for i in $(existing_nodes); do ((i > n)) && remove_node "$i"; done
  write_conf "$n"
  ensure_bridge || fail "cannot make bridge $BRIDGE"

  if ! pid_alive "$(pid_of munged)"; then
    local key="$DIR/munge/munge.key"
    if [[ ! -s "$key" ]]; then
      dd if=/dev/urandom of="$key" bs=1 count=1024 status=none || fail "cannot write $key"
      chmod 400 "$key"
    fi
    munged --force --socket="$DIR/munge/munge.socket" --key-file="$key" \
      --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" \
      --seed-file="$DIR/munge/munged.seed" >>"$DIR/log/munged.log" 2>&1 ||
      fail "munged did not start"
  fi
  if ! pid_alive "$(pid_of slurmctld)"; then
    SLURM_CONF="$CONF" slurmctld -c -f "$CONF" >>"$DIR/log/slurmctld.stderr" 2>&1 ||
      fail "slurmctld did not start"
  else
    SLURM_CONF="$CONF" scontrol reconfigure >/dev/null 2>&1
    # Jobs a killed test left behind would hold the nodes: this cluster is the tests' alone.
    SLURM_CONF="$CONF" scancel --quiet --user=root >/dev/null 2>&1
  fi
  for i in $(seq "$n"); do
    ensure_node "$i" "$n" || fail "cannot make namespace $(ns "$i")"
    if ! pid_alive "$(pid_of "slurmd.fn$i")"; then
      kill_namespace "$i"
      # Not `ip netns exec`: it remounts /sys, hiding the cgroup mounts slurmd needs. In a
      # private mount namespace the node's hosts file covers /etc/hosts (as ip netns exec would
      # do) and its own scratch folder covers TmpFS.
      mkdir -p "$DIR/spool/fn$i" "$DIR/node-tmp" "$DIR/node-tmp-fn$i"
      SLURM_CONF="$CONF" nsenter --net="/run/netns/$(ns "$i")" unshare --mount \
        --propagation private sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" "$3" &&
          exec slurmd -f "$4" -N "$5"' \
        sh "/etc/netns/$(ns "$i")/hosts" "$DIR/node-tmp-fn$i" "$DIR/node-tmp" "$CONF" "fn$i" \
        >>"$DIR/log/slurmd.fn$i.stderr" 2>&1 || fail "slurmd of fn$i did not start"
    fi
  done

  local states idle
  for _ in $(seq 120); do
    states="$(node_states)"
    idle=$(grep -c ' idle$' <<<"$states")
    [[ "$idle" == "$n" ]] && break
    while read -r node state; do
      if [[ "$state" =~ ^(down|drain) ]]; then
        SLURM_CONF="$CONF" scontrol update nodename="$node" state=resume >/dev/null 2>&1
      fi
    done <<<"$states"
    sleep 0.5
  done
  [[ "$idle" == "$n" ]] || fail "not all $n nodes idle after 60 s: $(tr '\n' ' ' <<<"$states")"
  log "running: $n nodes idle (SLURM_CONF=$CONF)"
}

node_arg() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] && ip netns list | grep -q "^$(ns "$1")\b" || {
    echo "$0: no node '${1:-}'" >&2
    exit 2
  }
}

case "${1:-}" in
  up) up "${2:-}" ;;
  down)
    down
    log "down"
    ;;
  status)
    states="$(node_states)"
    [[ -n "$states" ]] || { echo "not running"; exit 1; }
    echo "$states"
    ;;
  env) env_lines ;;
  kill)
    node_arg "${2:-}"
    ip link set "$(veth "$2")" down
    kill_namespace "$2"
    rm -f "$DIR/slurmd.fn$2.pid"
    ;;
  cut)
    node_arg "${2:-}"
    ip link set "$(veth "$2")" down
    ;;
  restore)
    node_arg "${2:-}"
    tc qdisc del dev "$(veth "$2")" root 2>/dev/null
    ip netns exec "$(ns "$2")" tc qdisc del dev eth0 root 2>/dev/null
    ip link set "$(veth "$2")" up
    ;;
  slow)
    node_arg "${2:-}"
    i=$2
    shift 2
    [[ $# -gt 0 ]] || { echo "usage: $0 slow I QDISC [ARGS]" >&2; exit 2; }
    if ! err=$(tc qdisc replace dev "$(veth "$i")" root "$@" 2>&1); then
      echo "$0: tc qdisc $*: $err" >&2
      [[ "$err" == *"qdisc kind is unknown"* ]] && exit 3
      exit 1
    fi
    ip netns exec "$(ns "$i")" tc qdisc replace dev eth0 root "$@"
    ;;
  *)
    echo "usage: $0 up N|down|status|env|kill I|cut I|restore I|slow I QDISC [ARGS]" \
      "(FLAM_CLUSTER_DIR=$DIR)" >&2
    exit 2
    ;;
esac
