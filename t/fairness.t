#!/bin/bash
# SPDX-License-Identifier: MIT
# Accept fairness: one busy listener must not starve the others.  With the
# daemon stopped (SIGSTOP), 150 connections queue on the listener of each of
# two namespaces; after SIGCONT the accept order in the log must interleave
# the two: a listener gives way after a bounded burst (16 per loop turn)
# instead of draining its whole queue first.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NA
netns_new NB
start_server echo echo
conf_begin "$T/fair.yaml" "$NA" "$NB"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
daemon_up "$CONF"

n=150
kill -STOP "$DPID"
start_bg qa ip netns exec "$NA" "$PYTHON" "$PEER" hold --port 7000 --n $n \
	--connect-wait 10 --max-life 60
start_bg qb ip netns exec "$NB" "$PYTHON" "$PEER" hold --port 7000 --n $n \
	--connect-wait 10 --max-life 60
wait_for 15 _has_line "$qa_out" && wait_for 15 _has_line "$qb_out"
is "$(cat "$qa_out") / $(cat "$qb_out")" \
	"connected $n failed 0 / connected $n failed 0" \
	"$n connections queued on each listener while nsrelayd is stopped"
kill -CONT "$DPID"

accepted() { [ "$(log_count ': echo: connection [0-9]+ from ')" -ge $((2 * n)) ]; }
check_within 20 "all $((2 * n)) queued connections accepted" accepted

# longest run of consecutive accepts from one namespace
run=$(grep -E ': echo: connection [0-9]+ from ' "$DLOG" |
	awk '{ ns = $4; if (ns == last) r++; else r = 1; last = ns;
	       if (r > max) max = r } END { print max + 0 }')
diag "longest run of accepts from one namespace: $run"
cmp_ok "$run" -le 32 "no listener drains its queue while the other waits"

stop_pid "$qa_pid"
stop_pid "$qb_pid"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
