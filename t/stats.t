#!/bin/bash
# SPDX-License-Identifier: MIT
# The control socket's stats: after a known exchange in one namespace (1000
# bytes from the client, a 5070-byte answer, one upstream that refuses, one
# that never answers the connect), the JSON shows exactly those numbers for
# that namespace and service, and nothing for the other namespace; listener
# states and addresses, last errors, the daemon's keys; "stats NS" gives that
# namespace alone; the host veth counters of a provisioned namespace grow
# with traffic over the veth; status, an unknown namespace, a bad line.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"

pool_claim B			# this run's index
pre="nsst-$$-"
for u in daemon; do netns_adopt "$pre$u"; done
link_adopt "nst$B"
getent passwd daemon >/dev/null || skip_all "no user daemon"

netns_new A
netns_new Z
ctl=$T/control.sock
start_server hc halfclose-reply --bytes 5000
start_server bh blackhole
conf_begin "$T/stats.yaml" --control none "$A" "$Z"
conf_service talk "127.0.0.1:$hc_port" 127.0.0.1:7000 "[::1]:7000"
conf_service refused "127.0.0.1:1" 127.0.0.1:7001
conf_service slow -o connect_timeout=300ms "127.0.0.1:$bh_port" 127.0.0.1:7002
conf_text <<EOF
control:
  path: $ctl
provision:
  users:
    - { name: daemon, index: $B }
  uid_base: 0
  namespace: "$pre%u"
  host_interface: "nst%i"
EOF
daemon_up "$CONF"
ctl() { "$NSRELAYCTL" -s "$ctl" "$@"; }
# jq without jq: json EXPR reads JSON on stdin as d, prints EXPR
json() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r, sort_keys=True) if not isinstance(r, str) else r)' "$1"; }

# --- the exchange, in namespace A only
check "1000 bytes up, the upstream's 5000-byte answer back" \
	peer_in "$A" halfclose --port 7000 --bytes 1000 --reply-bytes 5000
check "a refused upstream: the client is reset" \
	peer_in "$A" expect-close --port 7001 --within 5
check "an upstream that never accepts: closed at connect_timeout" \
	peer_in "$A" expect-close --port 7002 --within 5
settled() {
	ctl stats --json | json '[s["closed"]["connect-timeout"] for n in d["namespaces"] for s in n["services"] if n["name"] == "'"$A"'" and s["name"] == "slow"] == [1] and d["counts"]["connections"] == 0' | grep -qx true
}
check_within 20 "the stats show the connections ended" settled

out=$(ctl stats --json)
is "$(json 'sorted(d.keys())' <<<"$out")" \
	'["config", "counts", "last_reload", "namespaces", "pid", "services", "started", "stopping", "uptime", "version"]' \
	"the daemon's keys"
is "$(json 'd["pid"]' <<<"$out")" "$DPID" "pid"
is "$(json 'd["config"]' <<<"$out")" "{\"generation\": 1, \"path\": \"$(realpath "$CONF")\"}" \
	"config path and generation"
is "$(json '[n["name"] for n in d["namespaces"]]' <<<"$out")" \
	"[\"$A\", \"$Z\", \"${pre}daemon\"]" "every namespace, in order"
svc() {	# svc NS SERVICE KEYS...: those keys of one service
	json '{k: [s for n in d["namespaces"] if n["name"] == "'"$1"'" for s in n["services"] if s["name"] == "'"$2"'"][0][k] for k in "'"${*:3}"'".split()}' <<<"$out"
}
counters="accepted active bytes_in bytes_out connect_failures timeouts"
# "SHA256 1000\n" and 5000 bytes
is "$(svc "$A" talk $counters)" \
	'{"accepted": 1, "active": 0, "bytes_in": 1000, "bytes_out": 5070, "connect_failures": 0, "timeouts": 0}' \
	"A/talk: exactly 1000 bytes in, 5070 out, one connection"
is "$(svc "$A" talk closed)" \
	'{"closed": {"client-reset": 0, "connect-failed": 0, "connect-timeout": 0, "done": 1, "fin-timeout": 0, "idle-timeout": 0, "no-resources": 0, "no-upstream": 0, "shutdown": 0, "upstream-reset": 0}}' \
	"A/talk: closed as done"
is "$(svc "$A" talk listeners last_error upstream)" \
	"{\"last_error\": null, \"listeners\": [{\"address\": \"127.0.0.1:7000\", \"state\": \"listening\"}, {\"address\": \"[::1]:7000\", \"state\": \"listening\"}], \"upstream\": \"127.0.0.1:$hc_port\"}" \
	"A/talk: both listeners, listening; no error"
is "$(svc "$A" refused $counters)" \
	'{"accepted": 1, "active": 0, "bytes_in": 0, "bytes_out": 0, "connect_failures": 1, "timeouts": 0}' \
	"A/refused: one connect failure"
like "$(svc "$A" refused last_error)" '^\{"last_error": \{"at": [0-9]+\.[0-9]+, "reason": "connect-failed"\}\}$' \
	"A/refused: last error connect-failed, with its time"
is "$(svc "$A" slow $counters)" \
	'{"accepted": 1, "active": 0, "bytes_in": 0, "bytes_out": 0, "connect_failures": 0, "timeouts": 1}' \
	"A/slow: one timeout"
like "$(svc "$A" slow last_error)" '"reason": "connect-timeout"' "A/slow: last error connect-timeout"
zeros='{"accepted": 0, "active": 0, "bytes_in": 0, "bytes_out": 0, "connect_failures": 0, "timeouts": 0}'
for s in talk refused slow; do
	is "$(svc "$Z" "$s" $counters)" "$zeros" "Z/$s: nothing"
done
is "$(json '[n["veth"] for n in d["namespaces"] if n["name"] == "'"$A"'"]' <<<"$out")" \
	"[null]" "no veth for a namespace the daemon did not provision"
is "$(json 'd["counts"]' <<<"$out")" \
	'{"connections": 0, "listeners": 12, "listening": 12, "namespaces": 3}' "counts"

# --- one namespace
one=$(ctl stats "$A" --json)
is "$(json '[n["name"] for n in d["namespaces"]]' <<<"$one")" "[\"$A\"]" "stats NS: that namespace alone"
is "$(ctl stats nosuchns-$$ 2>&1)" "nsrelayctl: no such namespace: nosuchns-$$" \
	"stats of a namespace not served: an error"
ans=$("$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"stats ../x\nstatus extra\n")
f = s.makefile("rb"); print(f.readline().decode().strip()); print(f.readline().decode().strip())' "$ctl")
is "$ans" "error: bad namespace name: use letters, digits, '_', '-', '.'
error: too many arguments" "bad arguments: errors, and the next command is answered"

# --- the human table
tbl=$(ctl stats "$A")
like "$(grep -E "^$A +talk " <<<"$tbl")" "^$A +talk +2/2 +0 +1 +1000 +5070 +0 +0 +- *\$" "the table: A/talk"
like "$(grep -E "^$A +refused " <<<"$tbl")" "connect-failed [0-9]+s ago\$" "the table: A/refused's last error"

# --- status
st=$(ctl status --json)
is "$(json '"namespaces" in d' <<<"$st")" "false" "status: the daemon only"
is "$(json 'd["version"] != "" and d["uptime"] >= 0 and d["last_reload"] is None' <<<"$st")" "true" \
	"status: version, uptime, no reload yet"

# --- the veth of the provisioned namespace
ns=${pre}daemon
hostip="100.$((64 + B / 256)).$((B % 256)).1"
veth() { ctl stats "$ns" --json | json '[n["veth"] for n in d["namespaces"]][0]'; }
check_within 20 "the provisioned namespace has its veth counters" \
	sh -c "'$NSRELAYCTL' -s '$ctl' stats '$ns' --json | grep -q '\"veth\":{\"name\":\"nst$B\"'"
v0=$(veth)
rx0=$(json 'd["rx_bytes"]' <<<"$v0"); tx0=$(json 'd["tx_bytes"]' <<<"$v0")
rxp0=$(json 'd["rx_packets"]' <<<"$v0")
start_server vsink --host "$hostip" sink
check "200 KiB from the namespace to the host over the veth" \
	in_ns "$ns" "$PYTHON" -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"x" * 204800); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()' "$hostip" "$vsink_port"
grown() {
	local v
	v=$(veth)
	[ "$(json 'd["rx_bytes"]' <<<"$v")" -ge $((rx0 + 204800)) ] &&
	[ "$(json 'd["tx_bytes"]' <<<"$v")" -gt "$tx0" ] &&
	[ "$(json 'd["rx_packets"]' <<<"$v")" -gt "$rxp0" ]
}
check_within 20 "its veth counters grow by the traffic (rx >= +200 KiB, tx and packets too)" grown
diag "veth before: $v0" "veth after: $(veth)"
like "$(ctl stats "$ns")" "nst$B +[0-9]+" "the table shows the veth"

check "nsrelayd still runs" daemon_alive
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
