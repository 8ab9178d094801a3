#!/usr/bin/env bash
# cluster.sh - a throw-away single-node SLURM cluster WITH accounting (slurmdbd on MariaDB),
# living entirely in a temporary directory, for testing the sweeps on SLURM
# (tests/cluster/test_slurm.py; `make test-cluster`). Debian 12 or similar, as root.
#
#   cluster.sh run -- COMMAND...   start, run COMMAND with SLURM_CONF exported, stop;
#                                  exits with COMMAND's exit code
#   cluster.sh start               start and leave it running; prints `export SLURM_CONF=...`
#                                  (use: eval "$(tests/cluster/cluster.sh start)"; state kept
#                                  in $CLUSTER_STATE, default /tmp/cluster-sh.state)
#   cluster.sh stop                stop the cluster that `start` left running
#   cluster.sh install             only install the Debian packages, if missing
#
# The packages (slurm-wlm, munge, slurmdbd, mariadb-server) are installed with apt-get when
# missing (about 50 s); the cluster is up about 3 s after the start. `run` gives COMMAND
# SLURM_CONF, CLUSTER_TMPDIR (the temp dir) and CLUSTER_SH_TAG.
#
# The cluster: one node named after `hostname -s` (CPUs and memory from `slurmd -C`), partition
# `debug` (default; up to 4 jobs share a CPU), accounting through slurmdbd, every port chosen at
# random among free ones (two clusters can run at once). Tuned for short tests: KillWait=5 (s
# between SIGTERM and SIGKILL), cred_expire=10 (a requeued job may restart after 10 s instead of
# 120), the scheduler's passes every 1-2 s. SLURM checks time limits and --signal warnings only
# every 30 s and its shortest time limit is 1 minute: a job with --time=1 gets its warning signal
# 0-30 s after the moment asked for and its SIGTERM 60-90 s after it starts.
#
# Environment knobs:
#   CLUSTER_READY_TIMEOUT  seconds to wait for the node to be idle (default 60)
#   CLUSTER_KEEP=1         keep the temp dir (logs) after stopping
#   CLUSTER_NO_PIDNS=1     don't run the daemons in a private PID namespace (fallback is used
#                          automatically when `unshare --pid` is not permitted)
#   CLUSTER_SELECT=...     SelectTypeParameters (default CR_CPU_Memory)
#   CLUSTER_OVERSUBSCRIBE  the partition's OverSubscribe (default FORCE:4: up to 4 jobs share a
#                          CPU, so a 2-core CI machine runs several test jobs at once; memory
#                          stays consumable, DefMemPerCPU=1024). NO for exclusive CPUs.
#   CLUSTER_ACCOUNTING=0   no MariaDB/slurmdbd (AccountingStorageType=accounting_storage/none)
#   CLUSTER_MYSQL_INIT=1   initialise MariaDB's system tables (mariadb-install-db, +4 s) instead
#                          of running it with --skip-grant-tables on an empty datadir
#   CLUSTER_MYSQL_ON_DISK=1  keep MariaDB's datadir in the temp dir (default: on /dev/shm when
#                          it has > 512 MB free; a link in the temp dir points there)
#   CLUSTER_MYSQLD_OPTS    extra mariadbd options
#   CLUSTER_BASE           where the temp dir is made (default /tmp)
#   CLUSTER_CRED_EXPIRE    AuthInfo cred_expire in s (default 10; Slurm's default 120 is also the
#                          delay before a requeued job may restart)
#   CLUSTER_EXTRA_CONF     extra lines appended to slurm.conf
#
# Every daemon (munged, mariadbd, slurmdbd, slurmctld, slurmd, and slurmd's slurmstepd/job
# processes) runs under one supervisor that is PID 1 of a private PID namespace: when it exits,
# the kernel kills whatever is left in that namespace, so nothing survives a stop (slurmstepd
# leaves slurmd's process tree, so killing the daemons alone would leave the jobs running).
set -euo pipefail

PKGS=(slurm-wlm munge slurmdbd mariadb-server)
ME=$(readlink -f "${BASH_SOURCE[0]}")
STATE_FILE=${CLUSTER_STATE:-/tmp/cluster-sh.state}
log() { printf '[cluster.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- packages
install_packages() {
  local missing=() p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "need root to install: ${missing[*]}"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Don't let the maintainer scripts start the system-wide services (no init here anyway).
  local made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local apt=(apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
             install --no-install-recommends "${missing[@]}")
  # `apt-get update` only when needed: no lists yet, or the install fails with the stale ones.
  # (apt's output goes to stderr: stdout of `cluster.sh start` is meant for eval)
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! "${apt[@]}" >&2; then
    apt-get update -q >&2 && "${apt[@]}" >&2
  fi
  [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# ---------------------------------------------------------------- helpers
port_busy() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
USED_PORTS=" "
pick_port() {
  local p
  while :; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    port_busy "$p" && continue
    USED_PORTS+="$p "; echo "$p"; return
  done
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND... ; polls every 0.1 s
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "timed out waiting for $what"; return 1; }
    sleep 0.1
  done
}

# ---------------------------------------------------------------- configuration
write_configs() { # $1 = temp dir
  local T=$1 host conf_line
  mkdir -p "$T"/{etc,run,log,state,spool,munge,tmp}
  # MariaDB's datadir on tmpfs when there is room: slurmdbd creates ~40 InnoDB tables at start and
  # per registered cluster; with fsyncs to a real disk that costs ~2 s + ~2 s, on tmpfs ~0.4 s.
  local avail
  avail=$(df -k --output=avail /dev/shm 2>/dev/null | tail -n1 || echo 0)
  if [[ -z ${CLUSTER_MYSQL_ON_DISK:-} && -d /dev/shm && -w /dev/shm && ${avail// /} -gt 524288 ]]; then
    ln -s "$(mktemp -d -p /dev/shm cluster-sh-mysql.XXXXXX)" "$T/mysql"
  else
    mkdir "$T/mysql"
  fi
  chmod 755 "$T" "$T/munge"   # munged wants its socket dir reachable by all
  host=$(hostname -s)
  # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  conf_line=$(slurmd -C | head -n1)
  [[ $conf_line == NodeName=* ]] || die "slurmd -C said: $conf_line"
  conf_line=${conf_line#NodeName=* }
  local P_CTLD P_SLURMD P_DBD P_MYSQL
  P_CTLD=$(pick_port); P_SLURMD=$(pick_port); P_DBD=$(pick_port); P_MYSQL=$(pick_port)
  echo "$P_MYSQL" >"$T/etc/mysql.port"

  head -c 1024 /dev/urandom >"$T/munge/munge.key"
  chmod 400 "$T/munge/munge.key"

  cat >"$T/etc/slurm.conf" <<EOF
# generated by cluster.sh
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$P_CTLD
SlurmdPort=$P_SLURMD
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire (default 120 s) is also how long a requeued job must wait before it may start again
AuthInfo=socket=$T/munge/munge.socket,cred_expire=${CLUSTER_CRED_EXPIRE:-10}
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
PlugStackConfig=$T/etc/plugstack.conf
# no cgroups inside a container/VM sandbox
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=${CLUSTER_SELECT:-CR_CPU_Memory}
DefMemPerCPU=1024
SchedulerType=sched/backfill
# a job that becomes eligible later (requeued, --begin) is started by the backfill pass
# (default every 30 s) or the periodic main pass (60 s): poll often on this tiny cluster
SchedulerParameters=bf_interval=1,sched_interval=2
ReturnToService=2
# fast failure detection / short waits for tests
KillWait=5
OverTimeLimit=0
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
AccountingStorageType=$([[ ${CLUSTER_ACCOUNTING:-1} == 0 ]] && echo accounting_storage/none || echo accounting_storage/slurmdbd)
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$P_DBD
# the munge socket used toward slurmdbd (AuthInfo only covers slurmctld/slurmd traffic)
AccountingStoragePass=$T/munge/munge.socket
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 $conf_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=7-00:00:00 State=UP OverSubscribe=${CLUSTER_OVERSUBSCRIBE:-FORCE:4}
${CLUSTER_EXTRA_CONF:-}
EOF
  : >"$T/etc/plugstack.conf"
  # Read by slurmd/slurmstepd even with proctrack/linuxproc + task/none; keep cgroups out of it.
  cat >"$T/etc/cgroup.conf" <<EOF
CgroupAutomount=no
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
  cat >"$T/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$P_DBD
SlurmUser=root
PidFile=$T/run/slurmdbd.pid
LogFile=$T/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$P_MYSQL
StorageUser=root
StorageLoc=slurm_acct_db
EOF
  chown root:root "$T/etc/slurmdbd.conf"   # owned by SlurmUser ...
  chmod 600 "$T/etc/slurmdbd.conf"         # ... and not readable by others, or slurmdbd refuses
}

# ---------------------------------------------------------------- supervisor
# Runs as PID 1 of the private PID namespace (or as a plain process in the fallback). Starts
# every daemon in the foreground, writes $T/ready or $T/failed, then waits for SIGTERM.
supervise() {
  local T=$1 base=() dbd=() slurm=() stopping=
  export SLURM_CONF=$T/etc/slurm.conf CLUSTER_SH_TAG=$T
  exec </dev/null >>"$T/log/supervisor.log" 2>&1
  stop_daemons() {
    [[ -n $stopping ]] && return; stopping=1
    # slurmd + slurmctld first, while slurmdbd can still take their last messages, then
    # slurmdbd while MariaDB is still up, then MariaDB and munged
    local pid i stage
    for stage in "${slurm[*]}" "${dbd[*]}" "${base[*]}"; do
      for pid in $stage; do kill -TERM "$pid" 2>/dev/null || true; done
      for i in $(seq 50); do
        for pid in $stage; do kill -0 "$pid" 2>/dev/null && break; pid=; done
        [[ -z ${pid:-} ]] && break
        [[ -n ${CLUSTER_DEBUG:-} ]] && echo "$(date +%T.%N) still running: $(ps -o comm= -p "$pid")"
        sleep 0.1
      done
    done
    for pid in "${slurm[@]}" "${dbd[@]}" "${base[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  }
  trap 'stop_daemons; exit 0' TERM INT HUP
  fail() { echo "supervisor: $*"; echo "$*" >"$T/failed"; stop_daemons; exit 1; }
  phase() { echo "supervisor: $(date +%T.%N) $*"; }
  phase "starting munged${CLUSTER_ACCOUNTING:+ (accounting=$CLUSTER_ACCOUNTING)}"
  local port datadir; port=$(cat "$T/etc/mysql.port"); datadir=$(readlink -f "$T/mysql")

  munged -F --force --socket="$T/munge/munge.socket" --key-file="$T/munge/munge.key" \
    --pid-file="$T/run/munged.pid" --log-file="$T/log/munged.log" --seed-file="$T/munge/seed" \
    --num-threads=4 &
  base+=($!)
  if [[ ${CLUSTER_ACCOUNTING:-1} != 0 ]]; then
    # MariaDB: by default an empty datadir and --skip-grant-tables (ready in ~0.4 s; slurmdbd only
    # needs InnoDB, it creates its own database). mariadb-install-db would add ~4 s: it
    # bootstraps the system tables (help tables, sys schema ...). CLUSTER_MYSQL_INIT=1 does that.
    local grants=(--skip-grant-tables)
    if [[ -n ${CLUSTER_MYSQL_INIT:-} ]]; then
      grants=()
      mariadb-install-db --no-defaults --user=root --datadir="$datadir" --skip-test-db \
        --auth-root-authentication-method=normal --skip-name-resolve --innodb-log-file-size=16M \
        >"$T/log/mysql-install.log" 2>&1 || fail "mariadb-install-db failed (see $T/log/mysql-install.log)"
    fi
    mariadbd --no-defaults --user=root --datadir="$datadir" --tmpdir="$T/tmp" "${grants[@]}" \
      --socket="$T/run/mysqld.sock" --pid-file="$T/run/mysqld.pid" --log-error="$T/log/mysqld.log" \
      --bind-address=127.0.0.1 --port="$port" --skip-name-resolve --skip-log-bin \
      --innodb-buffer-pool-size=128M --innodb-log-file-size=16M --innodb-lock-wait-timeout=900 \
      --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-fast-shutdown=2 \
      ${CLUSTER_MYSQLD_OPTS:-} &
    base+=($!)
  fi
  wait_for 30 munged munge -n --socket="$T/munge/munge.socket" || fail "munged did not start"
  if [[ ${CLUSTER_ACCOUNTING:-1} != 0 ]]; then
    phase "munged ready; waiting for mariadbd"
    wait_for 30 mariadbd mariadb-admin --no-defaults --socket="$T/run/mysqld.sock" -uroot ping \
      || fail "mariadbd did not start (see $T/log/mysqld.log)"
    phase "mariadbd ready; starting slurmdbd"
    slurmdbd -D >>"$T/log/slurmdbd.out" 2>&1 &
    dbd+=($!)
    local dbd_port; dbd_port=$(sed -n 's/^DbdPort=//p' "$T/etc/slurmdbd.conf")
    wait_for 30 slurmdbd port_busy "$dbd_port" || fail "slurmdbd did not start (see $T/log/slurmdbd.log)"
    phase "slurmdbd listening; sacctmgr add cluster"
    # Register the cluster before slurmctld first talks to slurmdbd.
    wait_for 30 "sacctmgr add cluster" bash -c \
      'sacctmgr -i add cluster ci >/dev/null 2>&1; sacctmgr -n -P list cluster format=cluster | grep -qx ci' \
      || fail "could not register cluster ci"
  fi

  phase "starting slurmctld"
  slurmctld -D -i >>"$T/log/slurmctld.out" 2>&1 &
  slurm+=($!)
  # slurmd retries a failed registration only every ~10 s: start it once slurmctld answers
  wait_for 30 slurmctld scontrol ping || fail "slurmctld did not start (see $T/log/slurmctld.log)"
  phase "slurmctld answers; starting slurmd"
  slurmd -D >>"$T/log/slurmd.out" 2>&1 &
  slurm+=($!)
  echo "${base[*]} ${dbd[*]} ${slurm[*]}" >"$T/ready"
  while :; do
    wait -n || true
    # a daemon died: keep going (the outer side notices through sinfo/health checks)
    local alive=0 pid
    for pid in "${base[@]}" "${dbd[@]}" "${slurm[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || { echo "supervisor: all daemons gone"; exit 1; }
    [[ -n $stopping ]] && exit 0
  done
}

# ---------------------------------------------------------------- start / stop
# Fallback cleanup without a PID namespace: kill every process that carries our tag in its
# environment (the daemons; the command of `run` and the jobs it submitted) or holds a file
# under the temp dir open (slurmstepd gets a fresh environment from slurmd, but keeps the
# slurmd log and its spool socket open), together with all their descendants.
sweep_tagged() {
  local T=$1 f pid all=() i kids=()
  for f in $(grep -lzxF "CLUSTER_SH_TAG=$T" /proc/[0-9]*/environ 2>/dev/null) \
           $(find /proc/[0-9]*/fd -maxdepth 1 -lname "$T/*" 2>/dev/null); do
    pid=${f#/proc/}; pid=${pid%%/*}
    [[ $pid == "$$" || $pid == "$BASHPID" || " ${all[*]} " == *" $pid "* ]] || all+=("$pid")
  done
  for ((i = 0; i < ${#all[@]}; i++)); do   # breadth-first over children
    read -r -a kids <<<"$(cat /proc/"${all[i]}"/task/*/children 2>/dev/null | tr '\n' ' ')"
    all+=("${kids[@]}")
  done
  ((${#all[@]})) && kill -KILL "${all[@]}" 2>/dev/null || true
}

CL_T='' CL_SUP=''
start_cluster() {
  [[ $(id -u) == 0 ]] || die "must run as root (SlurmUser=root, slurmd)"
  install_packages
  local t0ns; t0ns=$(date +%s%N)
  CL_T=$(mktemp -d -p "${CLUSTER_BASE:-/tmp}" cluster-sh.XXXXXX)
  write_configs "$CL_T"
  local pidns=1
  if [[ -n ${CLUSTER_NO_PIDNS:-} ]] || ! unshare --pid --fork --mount-proc --kill-child true 2>/dev/null; then
    pidns=
  fi
  echo "${pidns:+pidns}" >"$CL_T/mode"
  if [[ -n $pidns ]]; then
    setsid unshare --pid --fork --mount-proc --kill-child -- bash "$ME" __supervise "$CL_T" \
      </dev/null >>"$CL_T/log/supervisor.log" 2>&1 &
  else
    setsid bash "$ME" __supervise "$CL_T" </dev/null >>"$CL_T/log/supervisor.log" 2>&1 &
  fi
  CL_SUP=$!
  echo "$CL_SUP" >"$CL_T/supervisor.pid"
  export SLURM_CONF=$CL_T/etc/slurm.conf
  local deadline=$((SECONDS + ${CLUSTER_READY_TIMEOUT:-60})) state=
  while :; do
    if [[ -e $CL_T/failed ]] || ! kill -0 "$CL_SUP" 2>/dev/null; then
      dump_logs; die "cluster failed to start: $(cat "$CL_T/failed" 2>/dev/null || echo supervisor exited)"
    fi
    if [[ -e $CL_T/ready ]]; then
      state=$(sinfo -h -N -o %T 2>/dev/null || true)
      [[ $state == idle ]] && break
    fi
    ((SECONDS < deadline)) || { dump_logs; die "node not idle after ${CLUSTER_READY_TIMEOUT:-60}s (state: ${state:-none})"; }
    sleep 0.2
  done
  local ms=$((($(date +%s%N) - t0ns) / 1000000))
  echo "$ms" >"$CL_T/startup_ms"
  log "cluster up in ${ms} ms (SLURM_CONF=$SLURM_CONF, pidns=${pidns:-no})"
}

stop_cluster() { # uses CL_T / CL_SUP
  [[ -n $CL_T && -d $CL_T ]] || return 0
  local sup=$CL_SUP init i
  # (a pid from a state file may have been reused: only touch our own supervisor)
  if [[ -n $sup ]] && tr '\0' ' ' <"/proc/$sup/cmdline" 2>/dev/null | grep -qF "__supervise $CL_T"; then
    if [[ $(cat "$CL_T/mode" 2>/dev/null) == pidns ]]; then
      # the namespace's PID 1 is unshare's only child
      init=$(cat /proc/"$sup"/task/*/children 2>/dev/null | awk '{print $1}' | head -n1)
      kill -TERM "${init:-$sup}" 2>/dev/null || true
    else
      kill -TERM "$sup" 2>/dev/null || true
    fi
    for i in $(seq 100); do kill -0 "$sup" 2>/dev/null || break; sleep 0.1; done
    # killing unshare SIGKILLs the namespace init (--kill-child), which takes the namespace along
    kill -KILL "$sup" 2>/dev/null || true
    [[ -n ${init:-} ]] && kill -KILL "$init" 2>/dev/null || true
    wait "$sup" 2>/dev/null || true
  fi
  sweep_tagged "$CL_T"     # safety net; a no-op when the PID namespace did its job
  if [[ -n ${CLUSTER_KEEP:-} ]]; then
    log "kept $CL_T"
  else
    [[ -L $CL_T/mysql ]] && rm -rf "$(readlink "$CL_T/mysql")"
    rm -rf "$CL_T"
  fi
  CL_T='' CL_SUP=''
}

dump_logs() {
  local f
  for f in "$CL_T"/log/*; do
    [[ -s $f ]] || continue
    echo "----- $f (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}

# ---------------------------------------------------------------- main
cmd=${1:-}
case $cmd in
  __supervise)
    # shellcheck disable=SC2034
    supervise "$2" ;;
  install)
    install_packages ;;
  run)
    shift
    [[ ${1:-} == -- ]] && shift
    (($#)) || die "usage: $0 run -- COMMAND..."
    CMD_PID=
    on_signal() { # $1 = exit code: stop the command, then the cluster
      trap '' INT TERM HUP
      [[ -n $CMD_PID ]] && kill -TERM "$CMD_PID" 2>/dev/null && wait "$CMD_PID" 2>/dev/null
      stop_cluster; trap - EXIT; exit "$1"
    }
    trap 'stop_cluster' EXIT
    trap 'on_signal 130' INT
    trap 'on_signal 143' TERM
    trap 'on_signal 129' HUP
    start_cluster
    # The command runs in the background so that a signal to this script is handled at once
    # (bash runs traps only after a foreground child exits); <&0 keeps its stdin, which bash
    # would otherwise point at /dev/null. CLUSTER_SH_TAG lets the fallback cleanup (no PID
    # namespace) find processes the command or its jobs left behind.
    CLUSTER_TMPDIR=$CL_T CLUSTER_SH_TAG=$CL_T "$@" <&0 &
    CMD_PID=$!
    rc=0; wait "$CMD_PID" || rc=$?
    CMD_PID=
    exit "$rc" ;;
  start)
    if [[ -e $STATE_FILE ]]; then
      read -r old_t old_sup <"$STATE_FILE" || true
      if [[ -n ${old_sup:-} ]] && kill -0 "$old_sup" 2>/dev/null; then
        die "a cluster is running ($STATE_FILE): cluster.sh stop first"
      fi
      log "removing stale $STATE_FILE (its supervisor is gone)"
      CL_T=${old_t:-} CL_SUP=; stop_cluster; rm -f "$STATE_FILE"
    fi
    trap 'stop_cluster' EXIT
    start_cluster
    printf '%s %s\n' "$CL_T" "$CL_SUP" >"$STATE_FILE"
    trap - EXIT
    echo "export SLURM_CONF=$SLURM_CONF" ;;
  stop)
    [[ -e $STATE_FILE ]] || { log "no $STATE_FILE: nothing to stop"; exit 0; }
    read -r CL_T CL_SUP <"$STATE_FILE"
    stop_cluster
    rm -f "$STATE_FILE" ;;
  *)
    awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$ME"
    [[ $cmd == -h || $cmd == --help ]] || exit 2 ;;
esac
