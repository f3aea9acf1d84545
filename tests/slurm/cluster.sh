#!/bin/bash
# tests/slurm/cluster.sh - a single-node Slurm cluster on this machine for
# the tests: `cluster.sh start DIR` writes DIR/slurm.conf (no auth, no
# cgroups, no accounting, private ports), starts slurmctld and slurmd in
# the foreground (-D) in the background, records their pids in
# DIR/slurmctld.pid and DIR/slurmd.pid, and waits until the node is idle;
# `cluster.sh stop DIR` stops exactly those pids. Clients find the cluster
# through SLURM_CONF=DIR/slurm.conf.
set -u
cmd=$1 dir=$2

free_port() {
	local p
	for p in $(seq "$1" $(($1 + 200))); do
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"; return 0
		fi
	done
	return 1
}

stop_pid() { # pid file: TERM, then KILL after 5s
	local f=$1 pid i
	[ -s "$f" ] || return 0
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	rm -f "$f"
}

case $cmd in
start)
	mkdir -p "$dir/state" "$dir/spool" "$dir/log"
	chmod 755 "$dir" "$dir/state" "$dir/spool"
	host=$(hostname -s)
	# More CPUs than the machine has (config_overrides lets slurmd
	# accept it): test jobs mostly sleep, and a job holding a CPU until
	# its time limit must not hold up the others.
	cpus=8
	mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
	cport=$(free_port 16817) || exit 1
	dport=$(free_port $((cport + 1))) || exit 1
	cat > "$dir/slurm.conf" <<CONF
ClusterName=flowytest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/none
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
MpiDefault=none
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=30
KillWait=2
OverTimeLimit=0
InactiveLimit=0
MessageTimeout=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
	export SLURM_CONF=$dir/slurm.conf
	slurmctld -D -i -f "$dir/slurm.conf" > "$dir/log/slurmctld.out" 2>&1 &
	echo $! > "$dir/slurmctld.pid"
	slurmd -D -f "$dir/slurm.conf" > "$dir/log/slurmd.out" 2>&1 &
	echo $! > "$dir/slurmd.pid"
	for i in $(seq 150); do
		if sinfo -h -o '%t' 2>/dev/null | grep -qx idle; then
			exit 0
		fi
		sleep 0.2
	done
	echo "cluster.sh: the node did not come up idle; see $dir/log" >&2
	sinfo >&2
	exit 1
	;;
stop)
	stop_pid "$dir/slurmd.pid"
	stop_pid "$dir/slurmctld.pid"
	;;
*)
	echo "usage: cluster.sh start|stop DIR" >&2
	exit 2
	;;
esac
