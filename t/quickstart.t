#!/bin/bash
# SPDX-License-Identifier: MIT
# The quick start (contrib/quickstart.sh), run as a new user runs it from a
# terminal: it serves the demo greeting inside its namespace, and Ctrl-C
# (SIGINT to its process group) removes the namespace, its temporary
# directory and every process it started; also when the demo upstream had
# already gone before Ctrl-C.  The already built daemon is used (NSRELAYD),
# nothing is installed or built; the namespace and port are this run's own.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v socat >/dev/null || skip_all "socat not found"
qs=$top_srcdir/contrib/quickstart.sh
[ -f "$qs" ] || skip_all "contrib/quickstart.sh not in this tree"

greeting="220 demo.host ESMTP - the host seen through nsrelay"

# child_of PARENT COMM: PIDs of PARENT's children named COMM
child_of() {
	local f stat comm
	for f in /proc/[0-9]*/stat; do
		stat=$(cat "$f" 2>/dev/null) || continue
		comm=${stat#*(}
		comm=${comm%%)*}
		stat=${stat##*) }
		# shellcheck disable=SC2086
		set -- "$1" "$2" $stat
		[ "$4" = "$1" ] && [ "$comm" = "$2" ] || continue
		f=${f#/proc/}
		echo "${f%/stat}"
	done
}
alive() { local p; for p in "$@"; do [ -e "/proc/$p" ] && return 0; done; return 1; }

# run NAME KILL_UPSTREAM: one quick start, Ctrl-C, everything checked
run() {
	local name=$1 kill_up=$2 ns port daemon work up pids st
	netns_reserve ns
	port=$(peer freeport) || bail "freeport failed"
	start_session "$name" env NSRELAY_DEMO_NS="$ns" NSRELAY_DEMO_PORT="$port" \
		NSRELAYD="$NSRELAYD" bash "$qs"
	local pid_var="${name}_pid"
	local qpid=${!pid_var}
	check_within 30 "$name: the demo greeting inside the demo namespace" \
		peer_in "$ns" greet --port 25 --expect "$greeting" --timeout 2
	check "$name: ... over IPv6 too" \
		peer_in "$ns" greet --host ::1 --port 25 --expect "$greeting"
	pids=$(group_procs "$name" | tr '\n' ' ')
	daemon=$(child_of "$qpid" nsrelayd)
	up=$(child_of "$qpid" socat)
	work=
	[ -z "$daemon" ] ||
		work=$(tr '\0' '\n' <"/proc/$daemon/cmdline" | sed -n 's|/nsrelay.yaml$||p')
	diag "$name: processes $pids(daemon ${daemon:-?}, upstream ${up:-?});" \
		"directory ${work:-?}"
	if [ -n "$daemon" ] && [ -n "$up" ] && [ -d "$work" ]; then
		pass "$name: its daemon, upstream and directory found"
	else
		fail "$name: its daemon, upstream and directory found"
	fi
	if [ "$kill_up" = 1 ] && [ -n "$up" ]; then
		kill -KILL "$up"
		wait_for 5 eval "! alive $up" || diag "the upstream did not die"
	fi

	group_kill "$name" INT	# Ctrl-C
	bg_wait 15 "$name"
	st=$?
	[ "$st" != 124 ] || diag "$name: still running 15 s after Ctrl-C"
	like "$st" '^(0|130)$' "$name: the quick start ends on Ctrl-C (status $st)"
	check "$name: the demo namespace is gone" test ! -e "/run/netns/$ns"
	is "$(group_procs "$name" | tr '\n' ' ')" "" \
		"$name: no process of its group is left"
	# shellcheck disable=SC2086
	check "$name: none of its processes is left ($pids)" eval "! alive $pids"
	check "$name: its temporary directory is gone" test ! -e "${work:-/nonexistent}"
	local listen
	listen=$(ss -Hltn "sport = :$port" 2>&1)
	is "$listen" "" "$name: nothing listens on the demo port any more"
}

run plain 0
run noup 1
done_testing
