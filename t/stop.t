#!/bin/bash
# SPDX-License-Identifier: MIT
# Graceful stop.  At SIGTERM the listeners close at once (a new connection
# is refused) while a connection in flight finishes its transfer intact,
# and the daemon exits 0 as soon as it has ended, well before the grace
# period.  Connections that outlive shutdown_grace are closed when it ends,
# and a stream cut there is reset, never ended with a FIN (downloads and
# uploads, with bytes pending in the relay or not, idle ones); the daemon
# then exits 0.  A second SIGTERM stops at once;
# shutdown_grace: 0s stops at once.  "At once" is bounded by a few seconds,
# far from the grace periods it is told from (5 s by default, 10 s, 30 s):
# a loaded machine's scheduling cannot fail it, a daemon that waits does.
#
# Nothing here depends on the kernel's buffer sizes (tcp_rmem/tcp_wmem and
# their autotuning differ between kernels and machines) or on how fast the
# machine runs: a transfer is "under way" when the daemon's stats say it
# relayed bytes of it, the relay "holds bytes" for a client when it has
# read more for it than the kernel's queues between it and that client
# hold, and the streams cut at the end of the grace period are endless
# (1 GiB), so no delay before it lets one of them end by itself.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"

netns_new NS
start_server echo echo
start_server slow source --bytes 2MiB --seed 4 --rate 1MiB \
	--progress "$T/slow.progress"
start_server fast source --bytes 1GiB --seed 5
start_server slow8 source --bytes 1GiB --seed 6 --rate 1MiB \
	--progress "$T/slow8.progress"
start_server sinkw sinkwatch --seed 7

conf() {	# conf GRACE
	conf_begin "$T/stop.yaml" "$NS"
	conf_text "shutdown_grace: $1"
	conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
	conf_service slow "127.0.0.1:$slow_port" 127.0.0.1:7001
	conf_service fast "127.0.0.1:$fast_port" 127.0.0.1:7002
}

# refused NS PORT: a connect to 127.0.0.1:PORT in NS is refused
refused() {
	in_ns "$1" "$PYTHON" -c '
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)' "$2"
}
ms_since() { echo $(( ($(_now_us) - $1) / 1000 )); }

# relayed SERVICE: bytes the daemon has read from SERVICE's upstream in NS
# (bytes_out of its stats)
relayed() {
	"$NSRELAYCTL" -s "$T/control.sock" stats "$NS" --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print(sum(s["bytes_out"] for n in d["namespaces"] if n["name"] == sys.argv[1]
          for s in n["services"] if s["name"] == sys.argv[2]))' "$NS" "$1"
}
relays() { local n; n=$(relayed "$1") && [ "$n" -gt 0 ]; }
# queued PORT: bytes in the kernel's queues of the connections to PORT in NS
# (both ends: Recv-Q + Send-Q of each)
queued() {
	in_ns "$NS" ss -Htn state established "( sport = :$1 or dport = :$1 )" |
		awk '{ q += $1 + $2 } END { print q + 0 }'
}

# 1. A transfer in flight finishes, then the daemon exits at once.  The
# client reads nothing until $T/go1 exists: the transfer is in flight for
# as long as the checks below take, however slow the machine.
conf 10s
daemon_up -d "daemon 1: listeners up" "$CONF"
start_bg get ip netns exec "$NS" "$PYTHON" "$PEER" slowread --port 7001 \
	--bytes 2MiB --seed 4 --go-file "$T/go1" --timeout 20
wait_for 10 relays slow || bail "the transfer did not start: $(relayed slow)"
t0=$(_now_us)
kill -TERM "$DPID"
check_within 5 "at SIGTERM the listeners close: a new connection is refused" \
	refused "$NS" 7000
check_within 5 "the stop is logged with the connection and the grace period" \
	grep -q "stopping; 1 connections may finish within 10000 ms" "$DLOG"
check "the daemon waits for the connection in flight" daemon_alive
touch "$T/go1"
check_bg 10 get "the connection in flight finishes: 2 MiB intact, then EOF"
t1=$(_now_us)
wait_for 5 _gone "$DPID"
waited=$(ms_since "$t1")
cmp_ok "$waited" -lt 3000 "the daemon exits once it has ended (${waited} ms after)"
cmp_ok "$(( (t1 - t0) / 1000 ))" -lt 10000 "well within the grace period"
stop_daemon
is "$DSTATUS" 0 "daemon 1 exits 0"

# 2. Connections outliving the grace period (1 s) are cut, and a cut
# stream never looks complete: every side whose stream had not ended is
# reset, whether the relay held bytes for it at that moment or not.  The
# streams never end by themselves (1 GiB at 1 MiB/s, 1 GiB to a client
# that reads nothing), so they are cut however slow or busy the machine is.
conf 1s
conf_service slow8 "127.0.0.1:$slow8_port" 127.0.0.1:7003
conf_service up8 "127.0.0.1:$sinkw_port" 127.0.0.1:7004
daemon_up -d "daemon 2: listeners up" "$CONF"
# a download that stalls: the client's buffer is small (SO_RCVBUF) and it
# reads nothing until told, so the relay fills up towards it.  The clients'
# timeouts only bound a broken relay; the points below wait for less.
start_bg stalled ip netns exec "$NS" "$PYTHON" "$PEER" expect-reset \
	--port 7002 --seed 5 --go-file "$T/go" --max-wait 120 --rcvbuf 64KiB \
	--timeout 60
# a download read as it comes, at 1 MiB/s: the relay's buffers are mostly
# empty when the grace period ends
start_bg down ip netns exec "$NS" "$PYTHON" "$PEER" expect-reset \
	--port 7003 --seed 6 --timeout 120
# the mirror: an upload at 1 MiB/s
start_bg upload ip netns exec "$NS" "$PYTHON" "$PEER" upload --port 7004 \
	--bytes 1GiB --seed 7 --rate 1MiB --progress "$T/up.progress" \
	--timeout 120
start_bg idle ip netns exec "$NS" "$PYTHON" "$PEER" drain --port 7000 \
	--timeout 120
wait_for 10 grep -q connected "$stalled_out" || bail "stalled client did not connect"
check_within 10 "idle connection open" eval \
	"ss -Htn state established 'dport = :$echo_port' | grep -q ."
over() { [ "$(cat "$1" 2>/dev/null || echo 0)" -gt "$2" ]; }
# the relay holds bytes for the stalled client: it has read more of the
# stream (its stats, read first: they only grow) than the kernel holds
# between it and the client (both sockets' queues, read after), whatever
# sizes the kernel gave those buffers
relay_holds() {
	local got q
	got=$(relayed fast) || return 1
	q=$(queued 7002) || return 1
	echo "relayed $got bytes, $q of them in the kernel's queues"
	[ "$got" -gt "$q" ]
}
check_within 20 "stalled download: the relay holds bytes for its client" \
	relay_holds
diag "$(relay_holds)"
check_within 10 "the download is under way (256 KiB)" over "$T/slow8.progress" 262144
check_within 10 "the upload is under way (256 KiB)" over "$T/up.progress" 262144
t0=$(_now_us)
kill -TERM "$DPID"
check_within 5 "daemon 2: listeners closed at once" refused "$NS" 7000
check_within 5 "the stop is logged with the 4 connections and the grace period" \
	grep -q "stopping; 4 connections may finish within 1000 ms" "$DLOG"
# none of them ends by itself: only the end of the grace period stops it
wait_for 20 _gone "$DPID"
took=$(ms_since "$t0")
if [ "$took" -ge 800 ] && [ "$took" -lt 20000 ]; then
	pass "the daemon stops at the end of the grace period ($took ms)"
else
	fail "the daemon stops at the end of the grace period" "$took ms after SIGTERM, grace 1 s"
fi
stop_daemon
is "$DSTATUS" 0 "daemon 2 exits 0"
check "the log says how many connections the grace period closed" \
	grep -q "grace period over: closing 4 connections" "$DLOG"
touch "$T/go"
check_bg 10 stalled "a download with bytes pending for its client is reset"
check_bg 10 down "a download whose relay buffers were empty is reset too, never a clean EOF"
diag "$(cat "$down_out")"
check_bg 10 upload "the upload is cut"
wait_for 10 grep -Eq '^(eof|reset|bad) ' "$sinkw_out"
like "$(grep -E '^(eof|reset|bad) ' "$sinkw_out")" '^reset [0-9]+$' \
	"the upstream of the cut upload sees a reset, never a clean EOF"
check_bg 10 idle "an idle connection is closed"
like "$(cat "$idle_out")" '^reset 0 ' \
	"the idle one is reset too: its streams never ended"

# 3. A second SIGTERM does not wait
conf 30s
daemon_up -d "daemon 3: listeners up" "$CONF"
start_bg idle2 ip netns exec "$NS" "$PYTHON" "$PEER" drain --port 7000 \
	--timeout 20
check_within 5 "daemon 3: a connection open" grep -q "upstream connected" "$DLOG"
kill -TERM "$DPID"
check_within 5 "daemon 3: draining" grep -q "may finish within 30000 ms" "$DLOG"
t0=$(_now_us)
kill -TERM "$DPID"
wait_for 5 _gone "$DPID"
took=$(ms_since "$t0")
cmp_ok "$took" -lt 5000 "a second SIGTERM stops at once ($took ms, grace 30 s)"
stop_daemon
is "$DSTATUS" 0 "daemon 3 exits 0"

# 4. shutdown_grace: 0s
conf 0s
daemon_up -d "daemon 4: listeners up" "$CONF"
start_bg idle3 ip netns exec "$NS" "$PYTHON" "$PEER" drain --port 7000 \
	--timeout 20
check_within 5 "daemon 4: a connection open" grep -q "upstream connected" "$DLOG"
t0=$(_now_us)
kill -TERM "$DPID"
wait_for 5 _gone "$DPID"
took=$(ms_since "$t0")
cmp_ok "$took" -lt 3000 "shutdown_grace: 0s stops at once ($took ms; the default is 5 s)"
stop_daemon
is "$DSTATUS" 0 "daemon 4 exits 0"

done_testing
