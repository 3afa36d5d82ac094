#!/bin/bash
# SPDX-License-Identifier: MIT
# Closing with bytes still buffered: when the idle timeout or shutdown
# (SIGTERM) ends a connection while bytes for the client are still held by
# the relay, those bytes are lost, and the client must see a reset
# (ECONNRESET), never a clean EOF that makes a truncated stream look
# complete.  A connection with nothing pending may end with a FIN.
#
# The client connects to an upstream that sends far more than the buffers
# on the way hold, and reads nothing: the upstream stalls (backpressure),
# the relay holds its high-water mark of bytes for the client.  Once the
# relay has closed the connection, the client reads what reached its own
# socket (a prefix of the stream, checked) and then must get ECONNRESET.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NS

start_server isrc source --bytes 1GiB --seed 9 --progress "$T/isrc.progress"
start_server tsrc source --bytes 1GiB --seed 10 --progress "$T/tsrc.progress"
start_server echo echo

conf_begin "$T/close.yaml" "$NS"
conf_service idle -o idle_timeout=1s "127.0.0.1:$isrc_port" 127.0.0.1:7000
conf_service quiet -o idle_timeout=1s "127.0.0.1:$echo_port" 127.0.0.1:7001
conf_service term "127.0.0.1:$tsrc_port" 127.0.0.1:7002
conf_service termq "127.0.0.1:$echo_port" 127.0.0.1:7003
daemon_up "$CONF"

progress() { cat "$1" 2>/dev/null || echo 0; }
# stalled FILE: the upstream has sent something and nothing more over 0.3 s
stalled() {
	local a b
	a=$(progress "$1")
	sleep 0.3	# the measuring window
	b=$(progress "$1")
	[ "$a" -gt 0 ] && [ "$a" = "$b" ]
}
connected() { grep -qx connected "$1"; }

# stall NAME PORT SEED PROGRESS: a client that reads nothing until the file
# $T/NAME.go exists, then must read a prefix of stream SEED and ECONNRESET
stall() {
	start_bg "$1" ip netns exec "$NS" "$PYTHON" "$PEER" expect-reset \
		--port "$2" --seed "$3" --go-file "$T/$1.go" --max-wait 60 \
		--timeout 20
	local out_var="${1}_out"
	wait_for 10 connected "${!out_var}" || diag "$1: not connected"
	if wait_for 15 stalled "$4"; then
		diag "$1: the upstream stalled after $(progress "$4") bytes"
	else
		diag "$1: the upstream did not stall: $(progress "$4") bytes"
	fi
}

# --- the idle timeout with bytes pending for the client
stall iclient 7000 9 "$T/isrc.progress"
idle_closed() { [ "$(log_count ': idle: connection [0-9]+ closed \(idle-timeout')" -ge 1 ]; }
check_within 5 "the idle timeout ends the stalled connection" idle_closed
touch "$T/iclient.go"
check_bg 20 iclient \
	"idle timeout with bytes pending: the client gets ECONNRESET, not EOF" &&
	diag "client: $(cat "$iclient_out")"

# --- the idle timeout with nothing pending: any close, a FIN is fine
check "idle timeout with nothing pending: the client is closed (0.8 .. 3 s)" \
	peer_in "$NS" expect-close --port 7001 --within 3 --not-before 0.8

# --- SIGTERM with bytes pending for one client, nothing for another
stall tclient 7002 10 "$T/tsrc.progress"
start_bg qclient ip netns exec "$NS" "$PYTHON" "$PEER" drain --port 7003 \
	--timeout 30
termq_up() { [ "$(log_count ': termq: connection [0-9]+: upstream connected')" -ge 1 ]; }
wait_for 10 termq_up || diag "the quiet connection was not seen connected"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM with connections open"
touch "$T/tclient.go"
check_bg 20 tclient \
	"SIGTERM with bytes pending: the client gets ECONNRESET, not EOF" &&
	diag "client: $(cat "$tclient_out")"
check_bg 10 qclient "SIGTERM with nothing pending: the client is closed" &&
	diag "quiet client: $(cat "$qclient_out")"
done_testing
