#!/bin/bash
# SPDX-License-Identifier: MIT
# Relaying: echo over IPv4 and IPv6 listeners in two namespaces, an IPv6
# upstream, a server-speaks-first greeting, a unix socket upstream, 16 MiB
# each way, 200 concurrent connections, an upstream that closes first.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NS1
netns_new NS2

start_server echo4 echo
start_server echo6 echo --host ::1
start_server greet greet --text "220 upstream ready"
mkdir -m 0755 "$T/u"
start_server uecho echo --unix "$T/u/echo.sock" --mode 0666
start_server src source --bytes 4MiB --seed 3

conf_begin "$T/relay.yaml" "$NS1" "$NS2"
conf_service echo "127.0.0.1:$echo4_port" 127.0.0.1:7000 "[::1]:7000"
conf_service echo6 "[::1]:$echo6_port" 127.0.0.1:7006
conf_service greet "127.0.0.1:$greet_port" 127.0.0.1:7001
conf_service unixecho "unix:$T/u/echo.sock" 127.0.0.1:7002
conf_service source "127.0.0.1:$src_port" 127.0.0.1:7003
daemon_up -d "all listeners up in both namespaces" "$CONF"
if grep -i "listening on 127.0.0.1:7000" "$DLOG" | grep -F "$NS1" |
	grep -qw echo; then
	pass "log: 'listening on 127.0.0.1:7000' naming namespace and service"
else
	fail "log: 'listening on 127.0.0.1:7000' naming namespace and service"
fi

for ns in "$NS1" "$NS2"; do
	check "echo round trip over IPv4 in $ns" \
		peer_in "$ns" echo --port 7000 --bytes 256KiB
	check "echo round trip over IPv6 in $ns" \
		peer_in "$ns" echo --host ::1 --port 7000 --bytes 256KiB
done
check "IPv6 upstream" peer_in "$NS2" echo --port 7006 --bytes 256KiB
check "server-speaks-first greeting arrives without sending" \
	peer_in "$NS1" greet --port 7001 --expect "220 upstream ready" --timeout 5
check "unix socket upstream" peer_in "$NS2" echo --port 7002 --bytes 1MiB
check "16 MiB each way, sha256 equal end to end" \
	peer_in "$NS1" echo --port 7000 --bytes 16MiB --timeout 20
check "200 concurrent connections all echo correctly" \
	peer_in "$NS2" concurrent --port 7000 --n 200 --bytes 4KiB --timeout 15
check "upstream closing first: client gets all 4 MiB, then EOF" \
	peer_in "$NS1" fetch --port 7003 --bytes 4MiB --seed 3
check "the daemon still serves after all that" \
	peer_in "$NS2" echo --host ::1 --port 7000 --bytes 64KiB

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
