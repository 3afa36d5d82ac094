#!/bin/bash
# SPDX-License-Identifier: MIT
# Failures: refused upstream, connect timeout, idle timeout, upstream killed
# mid-transfer, resets both ways, and a slow reader (backpressure: bounded
# memory).
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NS

start_server echo echo
start_server idle echo
start_server victim source --bytes 1GiB --seed 5 --rate 4MiB \
	--progress "$T/victim.progress"
start_server rst rst-after --bytes 1MiB --seed 2 --delay 0.3
start_server watch watch
start_server hole blackhole
start_server slow slowsource --bytes 64MiB --seed 6 --progress "$T/slow.progress"
dead_port=$(peer freeport) || bail "freeport failed"

conf_begin "$T/failure.yaml" "$NS"
conf_service dead "127.0.0.1:$dead_port" 127.0.0.1:7000
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7001 "[::1]:7001"
conf_service idle -o idle_timeout=1s "127.0.0.1:$idle_port" 127.0.0.1:7002
conf_service victim "127.0.0.1:$victim_port" 127.0.0.1:7003
conf_service rst "127.0.0.1:$rst_port" 127.0.0.1:7004
conf_service slow "127.0.0.1:$slow_port" 127.0.0.1:7005
conf_service watch "127.0.0.1:$watch_port" 127.0.0.1:7006
conf_service hole -o connect_timeout=1s "127.0.0.1:$hole_port" 127.0.0.1:7007
daemon_up "$CONF"

# --- refused upstream
check "upstream refused: the client is reset (not a clean EOF) within 3 s" \
	peer_in "$NS" expect-close --port 7000 --within 3 --reset
check "... and a working service still answers" \
	peer_in "$NS" echo --port 7001 --bytes 64KiB

# --- idle timeout 1s
check "idle connection closed by idle_timeout 1s (0.8 s .. 3 s)" \
	peer_in "$NS" expect-close --port 7002 --within 3 --not-before 0.8
check "traffic every 0.3 s keeps it open past 2 s" \
	peer_in "$NS" chatter --port 7002 --count 8 --interval 0.3

# --- upstream killed (SIGKILL) mid-transfer
start_bg drain ip netns exec "$NS" "$PYTHON" "$PEER" drain --port 7003 \
	--timeout 30 --min-bytes 1MiB
over_2mib() { [ "$(cat "$T/victim.progress" 2>/dev/null || echo 0)" -gt 2097152 ]; }
if wait_for 10 over_2mib; then
	kill -KILL "$victim_pid"
	wait "$victim_pid" 2>/dev/null
	check_bg 5 drain "upstream SIGKILLed mid-transfer: client connection closed" &&
		diag "$(cat "$drain_out")"
else
	fail "upstream SIGKILLed mid-transfer: client connection closed" \
		"transfer did not start: $(cat "$drain_err")"
fi
check "a new connection to the dead upstream's service is reset within 3 s" \
	peer_in "$NS" expect-close --port 7003 --within 3 --reset
check "... and a working service still answers" \
	peer_in "$NS" echo --host ::1 --port 7001 --bytes 64KiB

# --- RST mid-stream
check "upstream RST mid-stream: client gets ECONNRESET, not a clean EOF" \
	peer_in "$NS" expect-reset --port 7004 --seed 2

# --- an upstream that does not answer: connect_timeout (1 s) resets the client
check "connect timeout: the client is reset after 1 s (0.8 .. 4 s)" \
	peer_in "$NS" expect-close --port 7007 --within 4 --not-before 0.8 --reset
timeout_logged() { grep -q "hole: upstream .*connect timed out" "$DLOG"; }
check_within 5 "log: the connect timeout, naming the upstream" timeout_logged

# --- client RST: passed on to the upstream as a reset, promptly
check "client aborts after its 64 KiB were echoed" \
	peer_in "$NS" abort --port 7006 --bytes 64KiB
watch_line() { grep -qE '^(eof|reset) ' "$watch_out"; }
if wait_for 5 watch_line; then
	is "$(grep -E '^(eof|reset) ' "$watch_out")" "reset 65536" \
		"client RST: the upstream sees a reset (not a clean EOF) within 5 s"
else
	fail "client RST: the upstream sees a reset (not a clean EOF) within 5 s"
fi

# --- slow reader: the upstream writes 64 MiB, the client reads nothing
rss0=$(proc_field "$DPID" VmRSS)
go=$T/slow.go
start_bg slowread ip netns exec "$NS" "$PYTHON" "$PEER" slowread --port 7005 \
	--bytes 64MiB --seed 6 --go-file "$go" --max-wait 60 --timeout 30
progress() { cat "$T/slow.progress" 2>/dev/null || echo 0; }
wait_for 10 test -s "$T/slow.progress" || diag "the upstream never started"
# stalled = no progress over 1 s (at most 15 s)
stalled=
prev=$(progress)
for _ in $(seq 15); do
	sleep 1	# a measuring window, not a wait for a condition
	cur=$(progress)
	if [ "$cur" = "$prev" ] && [ "$cur" -gt 0 ]; then
		stalled=1
		break
	fi
	prev=$cur
done
rss1=$(proc_field "$DPID" VmRSS)
sent=$(progress)
diag "upstream sent $((sent / 1048576)) MiB before stalling;" \
	"nsrelayd VmRSS ${rss0:-?} kB before, ${rss1:-?} kB stalled"
if [ -n "$stalled" ] && [ "$sent" -lt $((40 << 20)) ]; then
	pass "slow reader: the upstream stalls well short of 64 MiB (< 40 MiB)"
else
	fail "slow reader: the upstream stalls well short of 64 MiB (< 40 MiB)" \
		"stalled=${stalled:-no} sent=$sent"
fi
cmp_ok "${rss1:-999999999}" -le $(( ${rss0:-0} + 16384 )) \
	"slow reader: nsrelayd RSS stays under baseline + 16 MiB"
touch "$go"
check_bg 30 slowread "slow reader then drains all 64 MiB intact, then EOF"

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
