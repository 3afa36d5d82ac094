#!/bin/bash
# SPDX-License-Identifier: MIT
# Several servers per service, passive health and failover (no active
# check): with balance: first every client goes to the first server; when
# it stops, each new client is tried on it, refused, and relayed to the
# second at once (no client fails); after fall failures in a row the first
# is down and gets no client; check.interval later one client is sent to
# it as a probe, refused again, and still served by the second; once it
# is back the next probe brings it up, and clients go to it again.  When
# every server is down a client is reset at once and no-upstream counted.
# Round robin spreads clients in turn; leastconn sends a client to the
# server with the fewest live connections.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"

start_server one greet --text "220 one"
start_server two greet --text "220 two"
start_server rr1 greet --text "220 rr1"
start_server rr2 greet --text "220 rr2"
start_server rr3 greet --text "220 rr3"
netns_new NS
# servers that accept and go without a byte: one with a FIN, one with a
# reset
cat >"$T/closer.py" <<'PY'
import socket, struct, sys
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(64)
print(ls.getsockname()[1], flush=True)
while True:
	c, _ = ls.accept()
	if sys.argv[1] == "reset":
		c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
			     struct.pack("ii", 1, 0))
	c.close()
PY
start_bg fin "$PYTHON" "$T/closer.py" fin
start_bg rst "$PYTHON" "$T/closer.py" reset
wait_for 5 _has_line "$T/fin.out" && wait_for 5 _has_line "$T/rst.out" ||
	bail "the closing servers did not start"
fin_port=$(head -n1 "$T/fin.out")
rst_port=$(head -n1 "$T/rst.out")
mport=$(peer freeport)
conf_begin "$T/up.yaml" "$NS"
conf_text <<YAML
metrics: { listen: "127.0.0.1:$mport" }
services:
  smtp:
    listen: "127.0.0.1:25"
    upstream: ["127.0.0.1:$one_port", "127.0.0.1:$two_port"]
    balance: first
    check: { protocol: none, interval: 1s, fall: 2 }
  rr:
    listen: "127.0.0.1:26"
    upstream: ["127.0.0.1:$rr1_port", "127.0.0.1:$rr2_port", "127.0.0.1:$rr3_port"]
    balance: roundrobin
  lc:
    listen: "127.0.0.1:27"
    upstream: ["127.0.0.1:$rr1_port", "127.0.0.1:$rr2_port"]
    balance: leastconn
  closing:
    listen: "127.0.0.1:29"
    upstream: ["127.0.0.1:$fin_port", "127.0.0.1:$two_port"]
    check: { protocol: none, fall: 100 }
  resetting:
    listen: "127.0.0.1:30"
    upstream: ["127.0.0.1:$rst_port", "127.0.0.1:$two_port"]
    check: { protocol: none, fall: 100 }
  dead:
    listen: "127.0.0.1:28"
    upstream: ["127.0.0.1:1", "unix:$T/nothing.sock"]
    check: { protocol: none, fall: 1, interval: 1m }
YAML
CONF_LISTEN=(127.0.0.1:25 127.0.0.1:26 127.0.0.1:27 127.0.0.1:28 127.0.0.1:29 127.0.0.1:30)
daemon_up "$CONF"

greets() {	# greets PORT TEXT: a client in NS is greeted with TEXT
	peer_in "$NS" greet --port "$1" --expect "$2" >/dev/null
}
check "balance first: the first server greets" greets 25 "220 one"
check "... and again" greets 25 "220 one"

# the first server stops: clients are relayed to the second at once
stop_pid "$one_pid"
t0=$(_now_us)
ok=0
for i in 1 2 3 4 5 6; do
	greets 25 "220 two" && ok=$((ok + 1))
done
t1=$(_now_us)
is "$ok" 6 "first server stopped: 6 clients of 6 greeted by the second"
diag "6 clients through the failover in $(( (t1 - t0) / 1000 )) ms"
check "the first server is down after fall (2) failures" \
	grep -q "smtp: server 127.0.0.1:$one_port is down: 2 failures" "$DLOG"
is "$(log_count "smtp: server 127.0.0.1:$one_port is down")" 1 \
	"... logged once"
# probes while it is still stopped: the client is served all the same
wait_for 1.5 false
check "a probe to the stopped server costs its client nothing" \
	greets 25 "220 two"

# it comes back on its port: the next probe (1 s after the last) finds it
start_server one greet --port "$one_port" --text "220 one"
back() { greets 25 "220 one"; }
t0=$(_now_us)
check_within 5 "restarted: clients go to the first server again" back
diag "back after $(( ($(_now_us) - t0) / 1000 )) ms (check.interval 1s)"
check "... its return is logged" \
	grep -q "smtp: server 127.0.0.1:$one_port is up again" "$DLOG"

# a server that accepts and closes (or resets) before its first byte: the
# connection moves to the next server (fall 100: the first stays in
# service, so every client goes through the move)
ok=0
for i in 1 2 3; do
	greets 29 "220 two" && ok=$((ok + 1))
	greets 30 "220 two" && ok=$((ok + 1))
done
is "$ok" 6 "a server that closes or resets before its first byte: 6 clients of 6 moved to the next"

# round robin: 6 clients, two to each server, in turn
got=
for i in 1 2 3 4 5 6; do
	got="$got $(peer_in "$NS" readline --port 26)"
done
is "$got" " 220 rr1 220 rr2 220 rr3 220 rr1 220 rr2 220 rr3" \
	"roundrobin: the servers in turn"

# leastconn: three held clients land 2 + 1 (ties in turn), then a fourth
# goes to the server with one
cat >"$T/hold.py" <<'PY'
import socket, sys, os, time
port, stop = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
f = s.makefile("rb")
print(f.readline().decode().strip(), flush=True)
while not os.path.exists(stop):
	time.sleep(0.05)
s.close()
PY
for i in 1 2 3; do
	start_bg "hold$i" ip netns exec "$NS" "$PYTHON" "$T/hold.py" 27 "$T/stop"
	wait_for 5 _has_line "$T/hold$i.out"
done
held=$(cat "$T/hold1.out" "$T/hold2.out" "$T/hold3.out" | sort | uniq -c |
       awk '{print $1}' | sort | tr '\n' ' ')
is "$held" "1 2 " "leastconn: three held clients spread 2 + 1"
least=$(sort "$T/hold1.out" "$T/hold2.out" "$T/hold3.out" | uniq -c |
	awk '$1 == 1 {print $2, $3}')
check "leastconn: the next client goes to the server with one ($least)" \
	greets 27 "$least"
touch "$T/stop"

# every server down: reset at once, counted
check "a service whose servers all refuse: the client is reset" \
	peer_in "$NS" expect-reset --port 28
t0=$(_now_us)
check "once they are down, the next client is reset at once too" \
	peer_in "$NS" expect-reset --port 28
cmp_ok $(( ($(_now_us) - t0) / 1000 )) -lt 1000 "... within a second"

# what the stats say: per service and server, and no-upstream counted
ctl() { "$NSRELAYCTL" -s "$T/control.sock" "$@"; }
json() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r, sort_keys=True) if not isinstance(r, str) else r)' "$1"; }
out=$(ctl stats --json)
is "$(json '[(s["name"], s["balance"], s["check"], [u["server"] for u in s["upstreams"]]) for s in d["services"]][0]' <<<"$out")" \
	"[\"smtp\", \"first\", \"none\", [\"127.0.0.1:$one_port\", \"127.0.0.1:$two_port\"]]" \
	"stats: the services' servers, balance and check"
is "$(json '[[u["state"], u["failures"] >= 3, u["connections"] >= 4, u["active"]] for s in d["services"] if s["name"] == "smtp" for u in s["upstreams"]]' <<<"$out")" \
	'[["up", true, true, 0], ["up", false, true, 0]]' \
	"stats: the first server up again, its failures, both servers' connections"
is "$(json '[u["state"] for s in d["services"] if s["name"] == "dead" for u in s["upstreams"]]' <<<"$out")" \
	'["down", "down"]' "stats: the dead service's servers are down"
is "$(json '[s["closed"]["no-upstream"] for n in d["namespaces"] for s in n["services"] if s["name"] == "dead"]' <<<"$out")" \
	'[1]' "stats: the client reset with every server down is counted as no-upstream"
like "$(ctl stats)" "UPSTREAMS" "nsrelayctl stats: an UPSTREAMS section"
like "$(ctl stats | grep -A20 UPSTREAMS | grep dead | head -1)" \
	"^dead +127\.0\.0\.1:1 +down +0 +1 +1 +none +-$" \
	"... with a line per server"
page=$("$PYTHON" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "http://127.0.0.1:$mport/metrics")
like "$page" "nsrelay_upstream_up\{service=\"dead\",server=\"127\.0\.0\.1:1\"\} 0" \
	"metrics: nsrelay_upstream_up 0 for a down server"
like "$page" "nsrelay_upstream_up\{service=\"smtp\",server=\"127\.0\.0\.1:$two_port\"\} 1" \
	"metrics: ... 1 for an up one"
if command -v promtool >/dev/null; then
	printf '%s\n' "$page" >"$T/page"
	check "promtool check metrics accepts the page" sh -c "promtool check metrics <'$T/page'"
fi

# reload: a server added to the dead service; the two that stay keep
# their state (down), the new one is up and serves at once
sed -i "s|upstream: \\[\"127.0.0.1:1\", \"unix:$T/nothing.sock\"\\]|upstream: [\"127.0.0.1:1\", \"unix:$T/nothing.sock\", \"127.0.0.1:$two_port\"]|" "$CONF"
check "the config names a third server" grep -q "nothing.sock\", \"127.0.0.1:$two_port" "$CONF"
kill -HUP "$DPID"
reloaded() { grep -q "reloaded .*generation 2" "$DLOG"; }
check_within 10 "reloaded" reloaded
out=$(ctl stats --json)
is "$(json '[[u["server"].split(":")[0], u["state"], u["failures"] > 0] for s in d["services"] if s["name"] == "dead" for u in s["upstreams"]]' <<<"$out")" \
	'[["127.0.0.1", "down", true], ["unix", "down", true], ["127.0.0.1", "up", false]]' \
	"reload: the servers that stay keep their state and counters; the new one is up"
check "... and the new one serves the service's clients" greets 28 "220 two"
daemon_alive
ok $? "the daemon is alive"
done_testing
