# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# t/lib.sh: shared harness of the integration tests (t/*.t), sourced by each.
#
# Environment (set by automake's check, defaults for running by hand):
#   top_srcdir, top_builddir, NSRELAYD (the built daemon), PYTHON (python3).
#
# TAP:        tap_init [--no-netns]; ok STATUS DESC; pass DESC; fail DESC;
#             check DESC CMD...; is GOT WANT DESC; like GOT ERE DESC;
#             cmp_ok A OP B DESC (integers); diag TEXT...; done_testing.
# Waiting:    wait_for SECS CMD... (polls every 50 ms; SECS may be "2.5");
#             check_within SECS DESC CMD... (a TAP point: CMD succeeds within
#             SECS; on failure the last attempt's output becomes diag).
# Processes:  start_bg NAME CMD...      sets NAME_pid, NAME_out, NAME_err
#             start_server NAME [-n NS] KIND ARGS...   peer.py serve KIND;
#                                       also sets NAME_port (or "ready")
#             stop_pid PID              TERM, bounded wait, KILL
# Users:      user_add NAME UID (a throwaway user, removed at exit)
# Namespaces: netns_new VAR; netns_reserve VAR (name only, created later by
#             netns_create NAME); in_ns NS CMD...; peer ARGS...;
#             peer_in NS ARGS... (a peer.py client inside NS)
# Daemon:     start_daemon CONFIG [ARGS...]  sets DPID, DLOG (DAEMON_PREFIX
#             array is put before the command; DAEMON_VERBOSE=-v by default);
#             stop_daemon (sets DSTATUS); wait_listening NS ADDR:PORT;
#             daemon_alive; log_count ERE
#             daemon_up [-d DESC] CONFIG [ARGS...]   start_daemon, then one TAP
#                                       point: every listener of the config
#                                       written by conf_* is up (bails if the
#                                       daemon exits at start-up)
#             wait_listeners [-t SECS] NS ADDR:PORT...   all of them up;
#                                       MISSING gets those that are not
#             daemon_placement [--threads] NS... NS=ADDR:PORT...
#                                       the daemon's listeners are all in
#                                       NS..., one for each NS=ADDR:PORT
# Config:     conf_begin FILE [--retry DUR] [--dir DIR] [--all GLOB] [NS...]
#                                       a service map (mode 0644, user nobody,
#                                       bind_retry_max 1s, namespaces NS...);
#                                       sets CONF (the file), CONF_NS
#             conf_defaults KEY=VALUE...   its defaults: section
#             conf_service NAME [-o KEY=VALUE]... UPSTREAM LISTEN...
#                                       one service; CONF_LISTEN gets LISTEN
#             conf_text [YAML]          append YAML (or stdin) as it is
# Background: bg_wait SECS NAME         exit status of NAME (from start_bg),
#                                       124 if still running after SECS
#             check_bg SECS NAME DESC   TAP point: NAME exits 0 within SECS
#             start_session NAME CMD... start_bg in a new session (its own
#                                       process group), SIGINT/SIGQUIT at
#                                       their defaults, as a terminal runs a
#                                       command; group_kill NAME SIG sends SIG
#                                       to that group (Ctrl-C: INT)
#             group_procs NAME          PIDs still in NAME's process group
# Mounts:     mount_adopt PATH          unmount PATH at exit (lazily)
# Pool:       pool_claim VAR_I0 [VAR_UB]   a block of POOL_BLOCK provisioning
#                                       indexes (I0..I0+63 of 1000..8999:
#                                       their addresses, host interfaces and
#                                       uids UB+I0.. are this test's alone
#                                       while it runs); UB, the uid_base, is
#                                       POOL_UID_BASE.  Released at exit.
# Everything created is removed by an EXIT trap, even when a test fails
# (KEEP_TMP=1 keeps the temporary directory with the logs, for debugging).
# On failure the daemon's log and the servers' stderr are printed as diag.

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${NSRELAYD:=$top_builddir/nsrelayd}"
: "${PYTHON:=python3}"
PEER=$top_srcdir/t/tools/peer.py
: "${DAEMON_VERBOSE=-v}"
DAEMON_PREFIX=()

T=
DPID=
DLOG=
DSTATUS=
_tap_n=0
_tap_fail=0
_tap_done=
_pids=()
_bgnames=()
_netns=()
_links=()
_users=()
_nsn=0
_dlogs=()
_groups=()
_mounts=()
_claims=()
CONF=
CONF_NS=()
CONF_LISTEN=()
MISSING=

# ------------------------------------------------------------------ TAP

diag() {	# diag TEXT...: each argument, each line of it, as "# line"
	local arg line
	for arg in "$@"; do
		while IFS= read -r line; do
			printf '# %s\n' "$line"
		done <<<"$arg"
	done
}

bail() {
	printf 'Bail out! %s\n' "$*"
	_tap_fail=$((_tap_fail + 1))
	exit 1
}

ok() {	# ok STATUS DESC
	_tap_n=$((_tap_n + 1))
	if [ "$1" = 0 ]; then
		printf 'ok %d - %s\n' "$_tap_n" "$2"
		return 0
	fi
	printf 'not ok %d - %s\n' "$_tap_n" "$2"
	_tap_fail=$((_tap_fail + 1))
	return 1
}

pass() { ok 0 "$1"; }
fail() { ok 1 "$1"; shift; [ $# -eq 0 ] || diag "$@"; return 1; }

check() {	# check DESC CMD...: ok if CMD exits 0; its output becomes diag
	local desc=$1 out st
	shift
	out=$("$@" 2>&1)
	st=$?
	ok "$st" "$desc"
	[ -z "$out" ] || diag "$out"
	[ "$st" = 0 ] || diag "(exit status $st: $*)"
	return "$st"
}

is() {	# is GOT WANT DESC
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "got:      '$1'" "expected: '$2'"
		return 1
	fi
}

like() {	# like GOT ERE DESC
	if grep -Eq -- "$2" <<<"$1"; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "got: '$1'" "does not match: /$2/"
		return 1
	fi
}

cmp_ok() {	# cmp_ok A OP B DESC   (integers; OP one of -lt -le -eq -ne -ge -gt)
	local r=1
	case $2 in
	-lt) [ "$1" -lt "$3" ] ;;
	-le) [ "$1" -le "$3" ] ;;
	-eq) [ "$1" -eq "$3" ] ;;
	-ne) [ "$1" -ne "$3" ] ;;
	-ge) [ "$1" -ge "$3" ] ;;
	-gt) [ "$1" -gt "$3" ] ;;
	*) false ;;
	esac 2>/dev/null && r=0
	if [ "$r" = 0 ]; then
		ok 0 "$4"
	else
		ok 1 "$4"
		diag "failed: $1 $2 $3"
		return 1
	fi
}

done_testing() {
	_tap_done=1
	printf '1..%d\n' "$_tap_n"
	[ "$_tap_fail" = 0 ] || exit 1
	exit 0
}

skip_all() {
	printf '1..0 # SKIP %s\n' "$*"
	_tap_done=1
	exit 0
}

# ------------------------------------------------------------------ time

_now_us() { local t=${EPOCHREALTIME//[.,]/}; echo "$((10#$t))"; }

_to_us() {	# "2.5" -> 2500000
	local s=$1 int frac
	int=${s%%.*}
	if [ "$int" = "$s" ]; then frac=; else frac=${s#*.}; fi
	frac=${frac}000000
	frac=${frac:0:6}
	echo "$(( 10#${int:-0} * 1000000 + 10#$frac ))"
}

wait_for() {	# wait_for SECS CMD...: poll CMD every 50 ms until it succeeds
	local end
	end=$(( $(_now_us) + $(_to_us "$1") ))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(_now_us)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

check_within() {	# check_within SECS DESC CMD...
	local secs=$1 desc=$2 out
	shift 2
	if wait_for "$secs" "$@"; then
		pass "$desc"
	else
		out=$("$@" 2>&1)
		fail "$desc" "not within $secs s; last attempt: $*" "$out"
	fi
}

# ------------------------------------------------------------------ setup

tap_init() {	# tap_init [--no-netns]: --no-netns = root not needed
	[ "${1-}" = --no-netns ] || [ "$(id -u)" = 0 ] || skip_all "needs root"
	command -v "$PYTHON" >/dev/null || skip_all "python3 not found"
	"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
		skip_all "python3 >= 3.9 needed"
	# the interpreter itself, not a wrapper script (a version manager's shim
	# can cost 0.3 s a run)
	PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')
	if [ "${1-}" != --no-netns ]; then
		command -v ip >/dev/null || skip_all "ip (iproute2) not found"
		local probe="nsrt-$$-p"
		ip netns add "$probe" 2>/dev/null ||
			skip_all "ip netns add does not work here"
		ip netns del "$probe"
	fi
	[ -x "$NSRELAYD" ] || bail "daemon not found: NSRELAYD=$NSRELAYD"
	# /tmp itself, not $TMPDIR: user nobody must reach unix sockets in it.
	T=$(mktemp -d /tmp/nsrt.XXXXXX) || bail "mktemp failed"
	chmod 0711 "$T"
	trap _cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# the reader of the TAP stream is gone (the harness was stopped): no
	# more output, but everything created is still removed
	trap 'exec >/dev/null; exit 141' PIPE
}

_is_ours() {	# is PID alive and a child of this shell?
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	[ "$2" = "$$" ]
}

_gone() { ! _is_ours "$1"; }

stop_pid() {	# stop_pid PID [SIG]: signal, wait up to 5 s, then SIGKILL
	local pid=$1 sig=${2:-TERM}
	_is_ours "$pid" || return 0
	kill "-$sig" "$pid" 2>/dev/null
	if ! wait_for 5 _gone "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait_for 5 _gone "$pid"
	fi
	wait "$pid" 2>/dev/null
	return 0
}

_dump_file() {	# _dump_file TITLE FILE [LINES]
	[ -s "$2" ] || return 0
	local n=${3:-200} total
	total=$(wc -l <"$2")
	diag "---- $1 ($total lines, last $n)"
	diag "$(tail -n "$n" "$2")"
}

_cleanup() {
	local rc=$? i
	trap - EXIT HUP INT TERM
	trap 'exec >/dev/null' PIPE
	if [ "$rc" != 0 ] || [ "$_tap_fail" != 0 ] || [ -z "$_tap_done" ]; then
		[ -n "$_tap_done" ] || [ "$rc" != 0 ] || rc=1
		for i in "${_dlogs[@]}"; do
			_dump_file "daemon log $(basename "$i")" "$i" 300
		done
		for i in "${_bgnames[@]}"; do
			_dump_file "$i stderr" "$T/$i.err" 30
		done
	fi
	for i in "${_pids[@]}"; do
		_is_ours "$i" && kill -TERM "$i" 2>/dev/null
	done
	for i in "${_pids[@]}"; do
		stop_pid "$i"
	done
	for i in "${_groups[@]}"; do
		kill -KILL -- "-$i" 2>/dev/null
	done
	for i in "${_mounts[@]}"; do
		umount -l "$i" 2>/dev/null
	done
	for i in "${_netns[@]}"; do
		[ -e "/run/netns/$i" ] && ip netns del "$i" 2>/dev/null
	done
	for i in "${_links[@]}"; do
		ip link del "$i" 2>/dev/null
	done
	for i in "${_users[@]}"; do
		getent passwd "$i" >/dev/null || continue
		# /etc/passwd is locked while another userdel runs: retry
		wait_for 20 userdel -f "$i" 2>/dev/null ||
			echo "# userdel $i failed"
	done
	# a test's own clean-up, if it defines one
	declare -F test_cleanup >/dev/null && test_cleanup
	_pool_release
	[ -n "$T" ] && [ -z "${KEEP_TMP-}" ] && rm -rf "$T"
	if [ -z "$_tap_done" ]; then
		printf '1..%d\n' "$_tap_n"
	fi
	exit "$rc"
}

# ------------------------------------------------------------------ netns

netns_reserve() {	# netns_reserve VAR: a fresh name, removed at exit
	_nsn=$((_nsn + 1))
	local name="nsrt-$$-$_nsn"
	_netns+=("$name")
	printf -v "$1" '%s' "$name"
}

netns_adopt() {	# netns_adopt NAME: remove NAME at exit (made by others)
	_netns+=("$1")
}

link_adopt() {	# link_adopt NAME: delete host link NAME at exit if present
	_links+=("$1")
}

# user_add NAME UID: a throwaway user (no home, no shell), removed at exit
# (after the namespaces and links, so that nothing of it is still used)
user_add() {
	getent passwd "$1" >/dev/null && bail "user $1 exists"
	getent passwd "$2" >/dev/null && bail "uid $2 is taken"
	_users+=("$1")
	# /etc/passwd is locked while another useradd runs: retry
	wait_for 20 useradd -M -N -u "$2" -d /nonexistent -s /usr/sbin/nologin "$1" ||
		bail "useradd $1 failed"
}

netns_create() {	# netns_create NAME: create, bring lo up
	ip netns add "$1" || bail "ip netns add $1 failed"
	ip -n "$1" link set lo up || bail "lo up in $1 failed"
}

netns_new() {	# netns_new VAR
	netns_reserve "$1"
	netns_create "${!1}"
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
peer() { "$PYTHON" "$PEER" "$@"; }
peer_in() { local ns=$1; shift; ip netns exec "$ns" "$PYTHON" "$PEER" "$@"; }

# ------------------------------------------------------------------ processes

start_bg() {	# start_bg NAME CMD...: NAME_pid, NAME_out, NAME_err
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	local pid=$!
	_pids+=("$pid")
	_bgnames+=("$name")
	printf -v "${name}_pid" '%s' "$pid"
	printf -v "${name}_out" '%s' "$T/$name.out"
	printf -v "${name}_err" '%s' "$T/$name.err"
}

bg_wait() {	# bg_wait SECS NAME: NAME's exit status; 124 if it runs on
	local pid_var="${2}_pid"
	local pid=${!pid_var}
	wait_for "$1" _gone "$pid" || return 124
	wait "$pid" 2>/dev/null
}

check_bg() {	# check_bg SECS NAME DESC: NAME (start_bg) exits 0 within SECS
	local st out_var="${2}_out" err_var="${2}_err"
	bg_wait "$1" "$2"
	st=$?
	if [ "$st" = 0 ]; then
		pass "$3"
		return 0
	fi
	if [ "$st" = 124 ]; then
		fail "$3" "$2 still running after $1 s"
	else
		fail "$3" "$2 exited with status $st"
	fi
	diag "$(cat "${!out_var}" "${!err_var}" 2>/dev/null)"
	return 1
}

# start_session NAME CMD...: start_bg CMD in a session (and process group)
# of its own, with SIGINT and SIGQUIT at their defaults (a background job
# of a script inherits them ignored): the way a terminal runs a command, so
# that group_kill NAME INT is a Ctrl-C.  NAME_pid is also the group's id.
start_session() {
	local name=$1
	shift
	start_bg "$name" "$PYTHON" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
os.setsid()
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
	local pid_var="${name}_pid"
	_groups+=("${!pid_var}")
}

group_kill() {	# group_kill NAME SIG: SIG to NAME's process group
	local pid_var="${1}_pid"
	kill "-$2" -- "-${!pid_var}"
}

group_procs() {	# group_procs NAME: PIDs left in NAME's process group
	local pid_var="${1}_pid" f stat
	for f in /proc/[0-9]*/stat; do
		stat=$(cat "$f" 2>/dev/null) || continue
		stat=${stat##*) }
		# shellcheck disable=SC2086
		set -- $stat
		[ "$3" = "${!pid_var}" ] || continue
		[ "$1" = Z ] && continue
		f=${f#/proc/}
		printf '%s\n' "${f%/stat}"
	done
}

mount_adopt() { _mounts+=("$1"); }	# mount_adopt PATH: umount at exit

# netns_file PATH: a new namespace bind-mounted on PATH (a private
# directory's file, not iproute2's), lo up; unmounted at exit
netns_file() {
	: >"$1" || bail "cannot create $1"
	mount_adopt "$1"
	unshare --net="$1" ip link set lo up || bail "unshare --net=$1 failed"
}

# ------------------------------------------------------------------ pool
# Tests run in parallel, and the daemon derives a namespace's addresses and
# host interface from its index (uid - uid_base): two tests on one index
# fight over the same /30 and the same interface name.  Claims are files
# /run/nsrelay-tests/slot.N holding "PID STARTTIME" of the test; making one
# is serialized by a lock on /run/nsrelay-tests/lock, and a claim whose
# process is gone (a test killed before its trap ran) is free again.  Slots
# are handed out in turn, so one just released (its namespaces may still
# be going away in the kernel) is the last to be taken again.  The default
# pool has 16384 indexes; the benches use 9000.. and never claim.
POOL_DIR=/run/nsrelay-tests
POOL_FIRST=1000
POOL_BLOCK=64
POOL_SLOTS=125			# indexes 1000..8999
POOL_UID_BASE=199000		# uids 200000..207999: above any login range

_starttime() {	# _starttime PID: field 22 of /proc/PID/stat
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}

_pool_free() {	# _pool_free FILE: no live test holds this claim
	local pid st
	[ -e "$1" ] || return 0
	read -r pid st <"$1" 2>/dev/null || return 0
	[ "$(_starttime "$pid")" != "$st" ]
}

pool_claim() {	# pool_claim VAR_I0 [VAR_UB]
	local lk next k slot f i0 u me
	mkdir -p "$POOL_DIR" && chmod 0700 "$POOL_DIR" || bail "mkdir $POOL_DIR"
	exec {lk}>>"$POOL_DIR/lock" || bail "cannot open $POOL_DIR/lock"
	flock -w 30 "$lk" || bail "$POOL_DIR/lock: held for 30 s"
	me="$$ $(_starttime $$)"
	read -r next <"$POOL_DIR/next" 2>/dev/null
	[[ "${next-}" =~ ^[0-9]+$ ]] || next=$(($$ % POOL_SLOTS))
	for ((k = 0; k < POOL_SLOTS; k++)); do
		slot=$(((next + k) % POOL_SLOTS))
		f=$POOL_DIR/slot.$slot
		_pool_free "$f" || continue
		i0=$((POOL_FIRST + slot * POOL_BLOCK))
		for ((u = POOL_UID_BASE + i0; u < POOL_UID_BASE + i0 + POOL_BLOCK; u++)); do
			getent passwd "$u" >/dev/null && continue 2
		done
		echo "$me" >"$f"
		echo $(((slot + 1) % POOL_SLOTS)) >"$POOL_DIR/next"
		exec {lk}>&-
		_claims+=("$f")
		printf -v "$1" '%s' "$i0"
		[ $# -lt 2 ] || printf -v "$2" '%s' "$POOL_UID_BASE"
		return 0
	done
	exec {lk}>&-
	bail "no free block of provisioning indexes in $POOL_DIR"
}

# pool_v4 INDEX END: the IPv4 address of a provisioned namespace's veth in
# the default pool (netns/pool.h): END 1 the host's end, 2 the namespace's
pool_v4() {
	local n=$((256 * $1 + $2))
	echo "100.$((64 + n / 65536)).$((n / 256 % 256)).$((n % 256))"
}

_pool_release() {
	local f me pid st
	me="$$ $(_starttime $$)"
	for f in "${_claims[@]}"; do
		read -r pid st <"$f" 2>/dev/null
		[ "$pid $st" = "$me" ] && rm -f "$f"
	done
}

_has_line() { [ -s "$1" ] && [ "$(tail -c1 "$1" | od -An -c | tr -d ' ')" = '\n' ]; }

start_server() {	# start_server NAME [-n NS] KIND ARGS...: NAME_port
	local name=$1 ns=
	shift
	if [ "${1-}" = -n ]; then ns=$2; shift 2; fi
	if [ -n "$ns" ]; then
		start_bg "$name" ip netns exec "$ns" "$PYTHON" "$PEER" serve "$@"
	else
		start_bg "$name" "$PYTHON" "$PEER" serve "$@"
	fi
	local out="$T/$name.out"
	wait_for 10 _has_line "$out" ||
		bail "server $name ($*) did not start: $(cat "$T/$name.err")"
	printf -v "${name}_port" '%s' "$(head -n1 "$out")"
}

# ------------------------------------------------------------------ config

# conf_begin FILE [--retry DUR] [--dir DIR] [--all GLOB] [--user U] [NS...]
# Start a service map in FILE: the control socket is at PATH ($T/control.sock;
# --control none: the test writes its own control: section), the daemon runs as U (nobody), retries
# listeners with bind_retry_max DUR (1s), and serves the namespaces NS... by
# name (in DIR, default /run/netns), or with --all every namespace of DIR
# whose name matches GLOB.  The conf_* helpers below append to it; daemon_up
# waits for what they listed.  Sets CONF=FILE and CONF_NS=(NS...).
conf_begin() {
	local file=$1 retry=1s dir= all= user=nobody ctl=$T/control.sock
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--control) ctl=$2; shift 2 ;;
		--retry) retry=$2; shift 2 ;;
		--dir) dir=$2; shift 2 ;;
		--all) all=$2; shift 2 ;;
		--user) user=$2; shift 2 ;;
		*) break ;;
		esac
	done
	CONF=$file
	CONF_NS=("$@")
	CONF_LISTEN=()
	_conf_services=
	{
		printf 'user: %s\nbind_retry_max: %s\n' "$user" "$retry"
		# never the host's default socket: a daemon of its own, or
		# another test's, may be using it
		[ "$ctl" = none ] || printf 'control:\n  path: %s\n' "$ctl"
		printf 'namespaces:\n'
		[ -z "$dir" ] || printf '  dir: %s\n' "$dir"
		if [ -n "$all" ]; then
			printf '  all: true\n  match: "%s"\n' "$all"
		fi
		if [ $# -gt 0 ]; then
			local IFS=,
			printf '  names: [%s]\n' "$*"
		fi
	} >"$file" || bail "cannot write $file"
	chmod 0644 "$file"
}

conf_defaults() {	# conf_defaults KEY=VALUE...: a defaults: section
	local kv
	printf 'defaults:\n' >>"$CONF"
	for kv in "$@"; do
		printf '  %s: %s\n' "${kv%%=*}" "${kv#*=}" >>"$CONF"
	done
}

# conf_service NAME [-o KEY=VALUE]... UPSTREAM LISTEN...
# A service relaying LISTEN... (opened in every namespace served) to
# UPSTREAM; each -o adds "KEY: VALUE" to it (idle_timeout=1s).  The LISTEN
# addresses are added to CONF_LISTEN.
conf_service() {
	local name=$1 opts=() a sep=
	shift
	while [ "${1-}" = -o ]; do
		opts+=("$2")
		shift 2
	done
	local up=$1
	shift
	if [ -z "$_conf_services" ]; then
		printf 'services:\n' >>"$CONF"
		_conf_services=1
	fi
	{
		printf '  %s:\n    listen: [' "$name"
		for a in "$@"; do
			printf '%s"%s"' "$sep" "$a"
			sep=", "
		done
		printf ']\n    upstream: "%s"\n' "$up"
		for a in "${opts[@]}"; do
			printf '    %s: %s\n' "${a%%=*}" "${a#*=}"
		done
	} >>"$CONF"
	# a udp service's addresses are waited for as "udp/ADDR:PORT"
	local kind=
	case " ${opts[*]} " in *" protocol=udp "*) kind=udp/ ;; esac
	for a in "$@"; do
		a=$kind$a
		case " ${CONF_LISTEN[*]} " in
		*" $a "*) ;;
		*) CONF_LISTEN+=("$a") ;;
		esac
	done
}

conf_text() {	# conf_text [YAML]: append YAML (without: stdin) as it is
	if [ $# -gt 0 ]; then printf '%s\n' "$1"; else cat; fi >>"$CONF"
}

# ------------------------------------------------------------------ daemon

start_daemon() {	# start_daemon CONFIG [ARGS...]: DPID, DLOG
	local conf=$1
	shift
	DLOG="$T/nsrelayd.$(( ${#_dlogs[@]} + 1 )).log"
	_dlogs+=("$DLOG")
	# shellcheck disable=SC2086
	"${DAEMON_PREFIX[@]}" "$NSRELAYD" -f $DAEMON_VERBOSE -c "$conf" "$@" \
		>"$DLOG" 2>&1 </dev/null &
	DPID=$!
	_pids+=("$DPID")
}

daemon_alive() { _is_ours "$DPID"; }

stop_daemon() {	# stop_daemon: SIGTERM, bounded wait; DSTATUS = exit status
	DSTATUS=
	if ! _is_ours "$DPID"; then
		wait "$DPID" 2>/dev/null
		DSTATUS=$?
		diag "nsrelayd (pid $DPID) was no longer running (status $DSTATUS)"
		return "$DSTATUS"
	fi
	kill -TERM "$DPID"
	if ! wait_for 10 _gone "$DPID"; then
		diag "nsrelayd did not exit within 10 s of SIGTERM; killing it"
		kill -KILL "$DPID"
		wait_for 5 _gone "$DPID"
	fi
	wait "$DPID" 2>/dev/null
	DSTATUS=$?
	return "$DSTATUS"
}

_listening() {	# _listening NS [udp/]ADDR:PORT (udp/: a bound UDP socket)
	local a=${2#udp/} opt=-Hltn
	[ "$a" = "$2" ] || opt=-Hlun
	ip netns exec "$1" ss "$opt" "sport = :${a##*:}" 2>/dev/null |
		grep -qF " $a "
}

wait_listening() {	# wait_listening NS ADDR:PORT [SECS]: a listener is up
	wait_for "${3:-10}" _listening "$1" "$2"
}

# wait_listeners [-t SECS] NS ADDR:PORT...: every ADDR:PORT listens in NS
# (each within SECS, default 10).  Returns 1 and appends " NS/ADDR:PORT" to
# MISSING for those that do not, 2 at once if the daemon exited.
wait_listeners() {
	local secs=10 ns a st=0
	if [ "${1-}" = -t ]; then secs=$2; shift 2; fi
	ns=$1
	shift
	for a in "$@"; do
		if ! wait_listening "$ns" "$a" "$secs"; then
			MISSING="$MISSING $ns/$a"
			st=1
		fi
		if [ -n "$DPID" ] && ! daemon_alive; then
			MISSING="$MISSING (nsrelayd exited)"
			return 2
		fi
	done
	return "$st"
}

# daemon_up [-d DESC] CONFIG [ARGS...]: start_daemon CONFIG ARGS..., then one
# TAP point DESC (default "listeners up"): every address of CONF_LISTEN
# listens in every namespace of CONF_NS.  With no namespace named (--all),
# the point is the daemon's "started" line instead.  Bails if the daemon
# exits meanwhile.
daemon_up() {
	local desc="listeners up" ns st=0
	if [ "${1-}" = -d ]; then desc=$2; shift 2; fi
	start_daemon "$@"
	MISSING=
	if [ ${#CONF_NS[@]} -eq 0 ]; then
		_started() { grep -q "started" "$DLOG"; }
		wait_for 10 _started || st=1
	else
		for ns in "${CONF_NS[@]}"; do
			wait_listeners "$ns" "${CONF_LISTEN[@]}"
			case $? in 0) ;; 1) st=1 ;; *) st=2; break ;; esac
		done
	fi
	daemon_alive || bail "nsrelayd exited at start-up"
	if [ "$st" = 0 ]; then
		pass "$desc"
	else
		fail "$desc" "not listening:$MISSING"
	fi
}

# daemon_placement [--threads] NS... NS=ADDR:PORT...: peer placement on the
# daemon: every listener of it is in one of the namespaces NS (by name),
# each NS=ADDR:PORT has one; --threads: every thread is in the host's.
daemon_placement() {
	local args=() a
	for a in "$@"; do
		case $a in
		--threads) args+=(--threads) ;;
		*=*) args+=(--expect "$a") ;;
		*) args+=(--ns "$a") ;;
		esac
	done
	peer placement --pid "$DPID" "${args[@]}"
}

log_count() {	# log_count ERE [FILE]: lines of the daemon log matching ERE
	grep -Eic -- "$1" "${2:-$DLOG}" 2>/dev/null || true
}

# proc_field PID FIELD: e.g. VmRSS (kB) from /proc/PID/status
proc_field() {
	awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status" 2>/dev/null
}

# cpu_ticks PID: utime + stime of PID (all threads), in clock ticks
cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat") || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo "$(( ${12} + ${13} ))"
}
