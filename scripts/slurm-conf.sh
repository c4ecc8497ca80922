# Sourced by scripts/slurm-local.sh and scripts/slurm-cluster.sh: the slurm.conf lines both test
# clusters share. `slurm_conf_common DIR CTLD_PORT SLURMD_PORT` prints them; DIR holds the munge
# socket, the state, slurmctld's pid file and the logs. The caller adds the host, node, timeout
# and per-node lines.
slurm_conf_common() {
  local dir=$1 ctld_port=$2 slurmd_port=$3
  cat <<EOF
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmctldPidFile=$dir/slurmctld.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
# Trust the CPU count of the node lines rather than the hardware: test nodes oversubscribe.
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
# A node that comes back (slurmd restarted) returns to service by itself.
ReturnToService=2
# Finished jobs stay visible to scontrol show job for an hour (there is no slurmdbd here).
MinJobAge=3600
InactiveLimit=0
SlurmctldTimeout=30
SchedulerType=sched/backfill
# As many sites set it: a job whose dependency can never be satisfied is cancelled (flam submit
# --after asks sbatch to exempt its jobs, so that flam watch can re-point them).
DependencyParameters=kill_invalid_depend
EOF
}
