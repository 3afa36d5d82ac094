#!/bin/bash
# SPDX-License-Identifier: MIT
# Upstream host names, resolved through a private name server (a small
# one in Python on a loopback port, whose answers the test changes):
#  - a name resolves and its address serves the service's clients;
#  - the answer changes: new connections go to the new address within
#    dns.refresh (1 s; the answer's TTL is 1 s too), a connection to the
#    old address is untouched and still relays;
#  - the name stops resolving (SERVFAIL): its last address is kept, said
#    once, and clients are still served;
#  - a name that never resolved has no server: its clients are reset;
#  - the stats name the address and the name it came from.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"

start_server one greet --host 127.0.0.2 --text "220 one"
start_server two greet --host 127.0.0.3 --port "$one_port" --text "220 two"
P=$one_port

# the name server: NAME ADDRESS (or NAME FAIL) lines in $T/zone, read at
# every question; A answers with TTL 1, AAAA with none, the rest NXDOMAIN
cat >"$T/dns.py" <<'PY'
import socket, struct, sys
zone = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
	q, peer = s.recvfrom(512)
	qid, flags = struct.unpack(">HH", q[:4])
	i, labels = 12, []
	while q[i]:
		labels.append(q[i + 1:i + 1 + q[i]].decode().lower())
		i += 1 + q[i]
	qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
	question = q[12:i + 5]
	name = ".".join(labels)
	table = dict(l.split() for l in open(zone) if l.strip())
	rcode, answers = 3, []
	if table.get(name) == "FAIL":
		rcode = 2
	elif name in table:
		rcode = 0
		if qtype == 1:
			answers.append(b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 1, 4) +
				       socket.inet_aton(table[name]))
	head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0)
	s.sendto(head + question + b"".join(answers), peer)
PY
echo "db.nsrelay.test 127.0.0.2" >"$T/zone"
start_bg dns "$PYTHON" "$T/dns.py" "$T/zone"
wait_for 5 _has_line "$T/dns.out" || bail "the name server did not start"
DNSP=$(head -n1 "$T/dns.out")

netns_new NS
conf_begin "$T/dns.yaml" "$NS"
conf_text <<YAML
dns: { servers: ["127.0.0.1:$DNSP"], refresh: 1s }
services:
  smtp:
    listen: "127.0.0.1:25"
    upstream: "DB.nsrelay.test:$P"
  nx:
    listen: "127.0.0.1:26"
    upstream: ["nx.nsrelay.test:$P"]
YAML
CONF_LISTEN=(127.0.0.1:25 127.0.0.1:26)
daemon_up "$CONF"

greets() { peer_in "$NS" greet --port 25 --expect "$1" >/dev/null 2>&1; }
check_within 5 "the name resolves: its address serves the clients" greets "220 one"

# a connection to the old address, held open; it relays on demand
cat >"$T/hold.py" <<'PY'
import socket, sys, os, time
s = socket.create_connection(("127.0.0.1", 25), timeout=10)
f = s.makefile("rb")
print(f.readline().decode().strip(), flush=True)
while not os.path.exists(sys.argv[1]):
	time.sleep(0.05)
s.sendall(b"still here\n")
print(f.readline().decode().strip(), flush=True)
PY
start_bg hold ip netns exec "$NS" "$PYTHON" "$T/hold.py" "$T/go"
wait_for 5 _has_line "$T/hold.out" || bail "the held client did not connect"
is "$(head -n1 "$T/hold.out")" "220 one" "a client held on the old address"

echo "db.nsrelay.test 127.0.0.3" >"$T/zone"
t0=$(_now_us)
check_within 10 "the answer changes: new clients go to the new address" greets "220 two"
ms=$(( ($(_now_us) - t0) / 1000 ))
cmp_ok "$ms" -le 3000 "... within refresh (1 s) and a client's start"
diag "new address in use ${ms} ms after the answer changed"
touch "$T/go"
check_within 5 "the connection to the old address is untouched and relays" \
	grep -qx "still here" "$T/hold.out"

echo "db.nsrelay.test FAIL" >"$T/zone"
fails() { grep -q "smtp: db.nsrelay.test:$P does not resolve (.*): 1 addresses of it kept" "$DLOG"; }
check_within 10 "the name stops resolving: said, its address kept" fails
check "... and its clients are still served" greets "220 two"
wait_for 2.5 false
is "$(log_count "smtp: db.nsrelay.test:$P does not resolve")" 1 "... said once"
echo "db.nsrelay.test 127.0.0.3" >"$T/zone"
again() { grep -q "smtp: db.nsrelay.test:$P resolves again" "$DLOG"; }
check_within 10 "it resolves again: said" again

check "a name that never resolved has no server: its client is reset" \
	peer_in "$NS" expect-reset --port 26
check "... and it is said" grep -q "nx: nx.nsrelay.test:$P does not resolve" "$DLOG"

json() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r, sort_keys=True) if not isinstance(r, str) else r)' "$1"; }
is "$("$NSRELAYCTL" -s "$T/control.sock" stats --json | json '[(u["server"], u["name"], u["state"]) for s in d["services"] if s["name"] == "smtp" for u in s["upstreams"]]')" \
	"[[\"127.0.0.3:$P\", \"db.nsrelay.test:$P\", \"up\"]]" \
	"stats: the address, the name it came from, its state"
# a reload that keeps the name: its address keeps its server and counters
before=$("$NSRELAYCTL" -s "$T/control.sock" stats --json | json '[u["connections"] for s in d["services"] if s["name"] == "smtp" for u in s["upstreams"]][0]')
kill -HUP "$DPID"
reloaded() { grep -q "reloaded .*generation 2" "$DLOG"; }
check_within 10 "reloaded" reloaded
kept() {
	"$NSRELAYCTL" -s "$T/control.sock" stats --json | json '[(u["server"], u["connections"]) for s in d["services"] if s["name"] == "smtp" for u in s["upstreams"]]' |
		grep -qx "\[\[\"127.0.0.3:$P\", $before\]\]"
}
check_within 5 "reload: the name's address keeps its server and its $before connections" kept
check "... and serves" greets "220 two"
daemon_alive
ok $? "the daemon is alive"
done_testing
