#!/bin/bash
# SPDX-License-Identifier: MIT
# Running out of file descriptors: under RLIMIT_NOFILE 64 and 65, a flood of 150
# connections must not make nsrelayd spin (CPU) nor flood its log, and once
# the flood is gone the daemon serves again.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v prlimit >/dev/null || skip_all "prlimit (util-linux) not found"

netns_new NS
start_server echo echo

conf_begin "$T/emfile.yaml" "$NS"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
# Which call runs out first, accept() or the upstream socket(), depends on
# the parity of the descriptors left: flood at two limits so that both paths
# are exercised (without the listener's error callback, libevent spins).
for lim in 64 65; do
	DAEMON_PREFIX=(prlimit --nofile=$lim:$lim)
	DAEMON_VERBOSE=	# no per-connection lines: the log's size is measured
	daemon_up -d "$lim: listener up" "$CONF"
	limit=$(awk '/^Max open files/ { print $4 "/" $5 }' "/proc/$DPID/limits")
	is "$limit" "$lim/$lim" "nsrelayd runs with RLIMIT_NOFILE $lim"
	check "echo works before the flood" peer_in "$NS" echo --port 7000 --bytes 64KiB

	start_bg flood ip netns exec "$NS" "$PYTHON" "$PEER" hold --port 7000 --n 150 \
		--connect-wait 5 --max-life 60
	wait_for 10 _has_line "$flood_out"
	diag "flood: $(cat "$flood_out")"
	fd_logged() { grep -qi 'file descriptors' "$DLOG"; }
	if wait_for 10 fd_logged; then
		pass "$lim: log: out of file descriptors"
	else
		fail "$lim: log: out of file descriptors" \
			"fds in use: $(ls "/proc/$DPID/fd" 2>/dev/null | wc -l)"
	fi

	# CPU over a 2 s window while the flood is held.
	hz=$(getconf CLK_TCK)
	lines0=$(log_count 'file descriptors')
	all0=$(wc -l <"$DLOG")
	t0=$(cpu_ticks "$DPID")
	sleep 2	# the measuring window
	t1=$(cpu_ticks "$DPID")
	lines1=$(log_count 'file descriptors')
	all1=$(wc -l <"$DLOG")
	cpu_ms=$(( (t1 - t0) * 1000 / hz ))
	diag "CPU over 2 s: ${cpu_ms} ms; log lines in 2 s: $((lines1 - lines0))\
	 'file descriptors', $((all1 - all0)) in all; $all1 in the log"
	cmp_ok "$cpu_ms" -lt 300 "$lim: no busy loop: < 0.3 s CPU over 2 s of EMFILE"
	cmp_ok $((lines1 - lines0)) -le 5 "$lim: at most 5 'file descriptors' log lines in 2 s"
	cmp_ok "$all1" -lt 50 "$lim: the log does not explode (< 50 lines)"
	daemon_alive || bail "nsrelayd died under the flood"

	stop_pid "$flood_pid"
	check_within 15 "$lim: after the flood, a new connection is served" \
		peer_in "$NS" echo --port 7000 --bytes 64KiB --timeout 3
	check "20 concurrent connections then (no descriptor leaked)" \
		peer_in "$NS" concurrent --port 7000 --n 20 --bytes 4KiB --timeout 10

	stop_daemon
	is "$DSTATUS" 0 "$lim: nsrelayd exits 0 on SIGTERM"
done
done_testing
