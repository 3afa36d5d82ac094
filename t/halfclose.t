#!/bin/bash
# SPDX-License-Identifier: MIT
# Half-close: the client's EOF reaches the upstream after all its data and
# the answer still flows back; the upstream's EOF reaches the client while
# the client can still send; fin_timeout closes a half-closed session whose
# other direction stays silent, but not one whose other direction is active.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NS

start_server hc halfclose-reply --bytes 4MiB --seed 4
start_server trickle halfclose-reply --bytes 1MiB --seed 8 --pieces 12 \
	--interval 0.4
start_server first sendfirst --bytes 1MiB --seed 2
start_server silent silent

conf_begin "$T/halfclose.yaml" "$NS"
conf_service reply "127.0.0.1:$hc_port" 127.0.0.1:7000
conf_service trickle -o fin_timeout=2s "127.0.0.1:$trickle_port" 127.0.0.1:7001
conf_service first "127.0.0.1:$first_port" 127.0.0.1:7002
conf_service silent -o fin_timeout=1s "127.0.0.1:$silent_port" 127.0.0.1:7003
daemon_up "$CONF"

# Client: 2 MiB, shutdown(SHUT_WR); upstream reads to EOF, replies with the
# sha256 of what it saw and 4 MiB, then closes.
check "client EOF after 2 MiB: upstream saw all of it, 4 MiB answer back" \
	peer_in "$NS" halfclose --port 7000 --bytes 2MiB --reply-bytes 4MiB \
	--reply-seed 4
check "a second half-closed exchange on the same service" \
	peer_in "$NS" halfclose --port 7000 --bytes 1 --reply-bytes 4MiB \
	--reply-seed 4 --seed 11

# Upstream sends 1 MiB and shuts down its writing side first; the client,
# once it saw EOF, sends 2 MiB: they must reach the upstream.
out=$(peer_in "$NS" late-send --port 7002 --expect-bytes 1MiB --seed 2 \
	--bytes 2MiB 2>&1)
st=$?
ok "$st" "upstream EOF first: client gets 1 MiB + EOF, can still send" ||
	diag "$out"
if [ "$st" = 0 ] && wait_for 10 grep -qxF -- "$out" "$first_out"; then
	pass "the upstream received the client's 2 MiB after its own EOF"
else
	fail "the upstream received the client's 2 MiB after its own EOF" \
		"client sent: $out" "upstream got: $(cat "$first_out")"
fi

# fin_timeout 2s, the upstream keeps answering in pieces 0.4 s apart for
# 4.4 s after the client's EOF: the session must survive (a piece may be
# late by 1.6 s).
check "fin_timeout does not cut a half-closed session still carrying data" \
	peer_in "$NS" halfclose --port 7001 --bytes 64KiB --reply-bytes 1MiB \
	--reply-seed 8

# fin_timeout 1s, the upstream never answers nor closes.
check "fin_timeout closes a silent half-closed session (0.8 s .. 3 s)" \
	peer_in "$NS" expect-close --port 7003 --send "request" --shutdown \
	--within 3 --not-before 0.8

check "the daemon still serves" peer_in "$NS" halfclose --port 7000 \
	--bytes 1KiB --reply-bytes 4MiB --reply-seed 4

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
