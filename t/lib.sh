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
# Namespaces: netns_new VAR; netns_reserve VAR (name only, created later by
#             netns_create NAME); in_ns NS CMD...; peer ARGS...;
#             peer_in NS ARGS... (a peer.py client inside NS)
# Daemon:     start_daemon CONFIG [ARGS...]  sets DPID, DLOG (DAEMON_PREFIX
#             array is put before the command; DAEMON_VERBOSE=-v by default);
#             stop_daemon (sets DSTATUS); wait_listening NS ADDR:PORT;
#             daemon_alive; log_count ERE
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
_nsn=0
_dlogs=()

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
	for i in "${_netns[@]}"; do
		[ -e "/run/netns/$i" ] && ip netns del "$i" 2>/dev/null
	done
	for i in "${_links[@]}"; do
		ip link del "$i" 2>/dev/null
	done
	# a test's own clean-up, if it defines one
	declare -F test_cleanup >/dev/null && test_cleanup
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

_listening() {	# _listening NS ADDR:PORT
	local port=${2##*:}
	ip netns exec "$1" ss -Hltn "sport = :$port" 2>/dev/null |
		grep -qF " $2 "
}

wait_listening() {	# wait_listening NS ADDR:PORT [SECS]: a listener is up
	wait_for "${3:-10}" _listening "$1" "$2"
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
