#!/bin/bash
# SPDX-License-Identifier: MIT
# A service's own limit per namespace (limits.connections_per_namespace of
# the service): with a cap of 3, six idle clients of that service get three
# upstream connections, the rest wait in the backlog; another service of
# the same namespace keeps being served; as clients leave, the waiting ones
# are relayed.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

start_server echo echo
start_server other echo
netns_new NS
conf_begin "$T/svc.yaml" "$NS"
conf_service capped -o "limits={connections_per_namespace: 3}" \
	"127.0.0.1:$echo_port" 127.0.0.1:7000 127.0.0.1:7001
conf_service free "127.0.0.1:$other_port" 127.0.0.1:7002
daemon_up "$CONF"

# six idle clients, three on each of the service's two addresses; each
# holds its connection until its stop file appears
cat >"$T/hold.py" <<'PY'
import socket, sys, os, time
port, stop = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
print("connected", flush=True)
while not os.path.exists(stop):
	time.sleep(0.05)
s.close()
PY
for i in 1 2 3 4 5 6; do
	port=$((7000 + i % 2))
	start_bg "hold$i" ip netns exec "$NS" "$PYTHON" "$T/hold.py" "$port" "$T/stop$i"
done

upstream_conns() {	# established connections to the capped upstream
	ss -Htn state established "dport = :$echo_port" | wc -l
}
at_three() { [ "$(upstream_conns)" -eq 3 ]; }
check_within 10 "six clients of the capped service: three relayed" at_three
# the others are held, not refused: still three a second later
wait_for 1 false
is "$(upstream_conns)" 3 "... and no more while they stay"
check "the other service of the namespace is served meanwhile" \
	peer_in "$NS" echo --port 7002 --bytes 1000
check_within 5 "the limit is logged at debug level" \
	grep -q "capped: service connection limit 3 reached" "$DLOG"

# three clients leave: the three waiting ones are relayed
touch "$T/stop1" "$T/stop2" "$T/stop3"
served_all() {
	[ "$(upstream_conns)" -eq 3 ] &&
	[ "$(grep -c connected "$hold4_out" "$hold5_out" "$hold6_out" |
	     awk -F: '{s += $2} END {print s}')" -eq 3 ]
}
check_within 10 "as clients leave, the waiting ones are relayed" served_all
touch "$T/stop4" "$T/stop5" "$T/stop6"
no_conns() { [ "$(upstream_conns)" -eq 0 ]; }
check_within 10 "all gone at the end" no_conns
done_testing
