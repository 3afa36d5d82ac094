#!/bin/bash
# SPDX-License-Identifier: MIT
# What a reload leaves behind, with connections held across it:
#  1. pauses: a listener held at a limit is decided again from the new
#     config, as if the daemon had started with it.  A service capped at 1
#     connection per namespace with one client holding it: removing the
#     cap, or raising it to 5, serves the client waiting in the backlog at
#     once and every client after it; lowering it holds the next one; the
#     same for the namespace's own limit;
#  2. counts: a listen address replaced by another, and a service removed,
#     while a connection of theirs lives on: the service's counters go on
#     from where they were (never backwards: Prometheus would read a
#     counter reset), its "active" agrees with the namespace's, and the
#     connection follows the service's new idle_timeout; a removed service
#     stays listed until its last connection has ended;
#  3. the backlog: a client waiting in the accept queue of a listener a
#     reload closes is relayed, not reset by the kernel.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"

netns_new NS
start_server echo echo
ctl() { "$NSRELAYCTL" -s "$T/control.sock" "$@"; }
# jq without jq: json EXPR reads the stats on stdin as d, prints EXPR
json() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r, sort_keys=True) if not isinstance(r, str) else r)' "$1"; }
svc() {	# svc NAME KEY: KEY of service NAME in NS, "none" if not listed
	ctl stats --json | json '([s["'"$2"'"] for n in d["namespaces"] for s in n["services"] if s["name"] == "'"$1"'"] or ["none"])[0]'
}
ns_active() { ctl stats --json | json '[n["active"] for n in d["namespaces"]][0]'; }
svc_is() { [ "$(svc "$1" "$2")" = "$3" ]; }

# conf NSLIMIT CAP [EXTRA]: service "capped" on 7000 with its own cap
# (0: none) and the namespace's limit NSLIMIT (0: none); EXTRA: YAML for
# more services
conf() {
	conf_begin "$T/rs.yaml.new" "$NS"
	printf 'limits:\n  connections_per_namespace: %s\n  connections_per_second: 0\n' \
		"$1" >>"$CONF"
	conf_service capped "127.0.0.1:$echo_port" 127.0.0.1:7000
	[ "$2" = 0 ] || printf '    limits: {connections_per_namespace: %s}\n' \
		"$2" >>"$CONF"
	[ -z "${3-}" ] || printf '%s\n' "$3" >>"$CONF"
	mv "$T/rs.yaml.new" "$T/rs.yaml"
	CONF=$T/rs.yaml
}
reload() { ctl reload >"$T/reload.out" 2>&1 && grep -q '^ok generation' "$T/reload.out"; }

# a client holding one connection (its echo done) until its stop file
cat >"$T/hold.py" <<'PY'
import socket, sys, os, time
port, stop = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(b"x")
if s.recv(1) != b"x":
	sys.exit("no echo")
print("served", flush=True)
while not os.path.exists(stop):
	time.sleep(0.05)
s.close()
PY
n=0
hold() {	# hold PORT: a holding client; its name in H
	n=$((n + 1))
	H=h$n
	start_bg "$H" ip netns exec "$NS" "$PYTHON" "$T/hold.py" "$1" "$T/stop$n"
}
served() { local o="${1}_out"; grep -q served "${!o}"; }
release() { touch "$T/stop${1#h}"; }
# not_served NAME: NAME is not served for a second (it waits in the
# backlog); a proof of absence needs some time, and a slow machine can only
# make this pass, never fail
not_served() { ! wait_for 1 served "$1"; }

# ---- 1. pauses ----------------------------------------------------------
conf 0 1
daemon_up "$CONF"
hold 7000; A=$H
check_within 10 "cap 1: the first client is served" served "$A"
hold 7000; B=$H
check "cap 1: the second waits" not_served "$B"
conf 0 0
check "reload removing the cap" reload
check_within 5 "the waiting client is served at once" served "$B"
hold 7000; C=$H
check_within 5 "so is a new one, while the first still holds" served "$C"
release "$A"; release "$B"; release "$C"
check_within 10 "all three gone" svc_is capped active 0

conf 0 1
check "reload back to cap 1" reload
hold 7000; A=$H
check_within 10 "cap 1 again: a client is served" served "$A"
hold 7000; B=$H
check "... the next waits" not_served "$B"
conf 0 5
check "reload raising the cap to 5" reload
check_within 5 "the waiting client is served at once" served "$B"
hold 7000; C=$H
check_within 5 "and a third" served "$C"
conf 0 2
check "reload lowering the cap to 2 with 3 live" reload
hold 7000; D=$H
check "a new client now waits" not_served "$D"
release "$A"; release "$B"
check_within 5 "once two have left (1 live, cap 2), it is served" served "$D"
release "$C"; release "$D"
check_within 10 "all gone" svc_is capped active 0

# the namespace's own limit, the same way
conf 1 0
check "reload: namespace limit 1, no service cap" reload
hold 7000; A=$H
check_within 10 "namespace limit 1: a client is served" served "$A"
hold 7000; B=$H
check "... the next waits" not_served "$B"
conf 0 0
check "reload removing the namespace limit" reload
check_within 5 "the waiting client is served at once" served "$B"
release "$A"; release "$B"
check_within 10 "all gone" svc_is capped active 0

# ---- 2. counts ----------------------------------------------------------
S8="  moved:
    listen: \"127.0.0.1:7010\"
    upstream: \"127.0.0.1:$echo_port\"
  doomed:
    listen: \"127.0.0.1:7020\"
    upstream: \"127.0.0.1:$echo_port\""
conf 0 0 "$S8"
check "reload adding services moved and doomed" reload
wait_listeners "$NS" 127.0.0.1:7010 127.0.0.1:7020
hold 7010; M=$H
hold 7020; X=$H
check_within 10 "a client of each holds a connection" eval 'served "$M" && served "$X"'
# bytes through other connections of both, so the counters are not 0
check "traffic through moved" peer_in "$NS" echo --port 7010 --bytes 100000
check "traffic through doomed" peer_in "$NS" echo --port 7020 --bytes 50000
before_in=$(svc moved bytes_in)
before_acc=$(svc moved accepted)
cmp_ok "$before_in" -ge 100001 "moved: bytes_in counted ($before_in)"
# moved goes to another address with a 1 s idle timeout; doomed goes
S8b="  moved:
    listen: \"127.0.0.1:7011\"
    upstream: \"127.0.0.1:$echo_port\"
    idle_timeout: 1s"
conf 0 0 "$S8b"
check "reload moving moved to another address, removing doomed" reload
wait_listeners "$NS" 127.0.0.1:7011
after_in=$(svc moved bytes_in)
cmp_ok "$after_in" -ge "$before_in" \
	"moved: bytes_in does not go backwards ($before_in -> $after_in)"
cmp_ok "$(svc moved accepted)" -ge "$before_acc" "moved: accepted neither"
is "$(svc doomed active)" 1 "doomed: still listed while its connection lives"
# from one answer: moved's connection may end (its new idle_timeout)
# between two
sum_ns_active() {
	ctl stats --json | json '"%d %d" % (sum(s["active"] for n in d["namespaces"] for s in n["services"]), [n["active"] for n in d["namespaces"]][0])'
}
read -r sum nsa <<<"$(sum_ns_active)"
is "$sum" "$nsa" "the services' active add up to the namespace's"
# the held connection of the old address follows the new idle timeout
idle_closed() { [ "$(ctl stats --json | json '[s["closed"]["idle-timeout"] for n in d["namespaces"] for s in n["services"] if s["name"] == "moved"][0]')" -ge 1 ]; }
check_within 10 "moved: its connection from before follows the new idle_timeout (1 s)" idle_closed
check "traffic through moved's new address" peer_in "$NS" echo --port 7011 --bytes 1000
cmp_ok "$(svc moved bytes_in)" -ge $((after_in + 1000)) \
	"moved: counted on from where it was"
release "$X"
check_within 10 "doomed: gone from the stats once its last connection ended" \
	svc_is doomed active none
release "$M"

# ---- 3. the backlog -----------------------------------------------------
conf 0 1
check "reload: cap 1 on capped, at 7000" reload
hold 7000; A=$H
check_within 10 "a client holds the cap" served "$A"
hold 7000; B=$H
queued() { ip netns exec "$NS" ss -Hltn 'sport = :7000' | awk '{ exit !($2 >= 1) }'; }
check_within 5 "the next one waits in the listener's accept queue" queued
check "... not served" not_served "$B"
conf 0 1 # same, at another address
sed -i 's/127.0.0.1:7000/127.0.0.1:7001/' "$CONF"
check "reload moving capped to 7001: its old listener closes" reload
check_within 5 "the client that waited in the old listener's backlog is relayed, not reset" \
	served "$B"
check_within 5 "the log says so" \
	grep -q "capped 127.0.0.1:7000: 1 connections waiting in the backlog accepted before closing" "$DLOG"
release "$A"; release "$B"

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
