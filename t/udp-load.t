#!/bin/bash
# SPDX-License-Identifier: MIT
# UDP services under load, relaying to dnsmasq on a loopback port of the
# host (the service "dns", protocol udp, on 127.0.0.53:53 in every
# namespace):
#  (a) 20 namespaces at once, in each dnsq.py's 1,000 queries from 50
#      source ports: every one answered, each with its own id; a flow for
#      each source port; once the 2 s idle timeout has passed no flow is
#      left and the daemon's descriptors are back where they were;
#  (b) a flood of 100,000 datagrams (valid queries, never waiting for the
#      answers, from 500 source ports) from namespace F while namespace G
#      asks 2,000 queries: G's are all answered (retries allowed), its p99
#      is reported (bounded at a generous 2 s), and afterwards the
#      descriptors are back again;
#  (c) a port scan under RLIMIT_NOFILE 400: namespace S sends one query
#      from each of 3,000 source ports; meanwhile namespace G's queries are
#      all answered and G loses no flow, the daemon's descriptors never go
#      past the limit, and S's service shows the scan held: flows evicted
#      (closed no-resources) or datagrams dropped (drops limit).
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
. "$top_srcdir/t/dns-lib.sh"
command -v prlimit >/dev/null || skip_all "prlimit (util-linux) not found"
jget() {	# jget KEY FILE: KEY of the JSON line in FILE
	"$PYTHON" -c 'import json, sys; print(json.loads(open(sys.argv[2]).readline())[sys.argv[1]])' "$1" "$2"
}
udp_up() {	# udp_up NS...: 127.0.0.53:53 bound (UDP) in each
	local ns
	for ns in "$@"; do
		_listening "$ns" udp/127.0.0.53:53 || return 1
	done
}
fds() { ls "/proc/$DPID/fd" 2>/dev/null | wc -l; }
fds_at_most() { [ "$(fds)" -le "$1" ]; }
fds_settled() {	# the count no longer moves (over 0.5 s); FDS gets it
	local a
	a=$(fds)
	wait_for 0.5 false
	FDS=$(fds)
	[ "$a" = "$FDS" ]
}

# ---- the resolver on the host -------------------------------------------------
start_dnsmasq

# ---- (a) 20 namespaces at once ---------------------------------------------------
NSS=()
for i in $(seq 20); do
	netns_new N
	NSS+=("$N")
done
netns_new F
netns_new G
conf_begin "$T/load.yaml" "${NSS[@]}" "$F" "$G"
conf_service dns -o protocol=udp -o idle_timeout=2s "127.0.0.1:$DP" 127.0.0.53:53
DAEMON_VERBOSE=
start_daemon "$CONF"
if wait_for 20 udp_up "${NSS[@]}" "$F" "$G"; then
	pass "(a) the UDP listener is up in all 22 namespaces"
else
	daemon_alive || bail "nsrelayd exited at start-up"
	fail "(a) the UDP listener is up in all 22 namespaces"
fi
# one flow first, and its end: what the engine opens once, for its first
# flow, is not counted as a flow's
warm_up() {	# warm_up NS
	local out
	out=$(in_ns "$1" dig @127.0.0.53 db.internal +short +time=2 +tries=3)
	[ "$out" = 10.0.0.1 ] || diag "warm-up query in $1: '$out'"
	wait_for 15 stats_true 'svc(NS[0], "dns")["active"] == 0' "$1" ||
		diag "warm-up flow in $1 did not end"
}
warm_up "${NSS[0]}"
wait_for 10 fds_settled
base=$FDS
diag "the engine (pid $DPID) holds $base descriptors before the queries"

for i in "${!NSS[@]}"; do
	start_bg "q$i" ip netns exec "${NSS[$i]}" "$PYTHON" "$DNSQ" query \
		--name db.internal --expect 10.0.0.1 --count 1000 --ports 50 \
		--window 32 --retries 5 --timeout-ms 1000
done
bad=
wrong=0
for i in "${!NSS[@]}"; do
	bg_wait 120 "q$i"
	st=$?
	out_var="q${i}_out"
	if [ "$st" != 0 ]; then
		bad="$bad ${NSS[$i]} (exit $st): $(cat "${!out_var}" 2>/dev/null)
"
	fi
	w=$(jget wrong "${!out_var}" 2>/dev/null)
	[[ $w =~ ^[0-9]+$ ]] || w=1
	wrong=$((wrong + w))
done
if [ -z "$bad" ]; then
	pass "(a) 20 namespaces x 1,000 queries from 50 source ports: all answered right"
else
	fail "(a) 20 namespaces x 1,000 queries from 50 source ports: all answered right" "$bad"
fi
is "$wrong" 0 "(a) no answer with another id or another address"
diag "(a) first namespace: $(cat "$q0_out")"
acc=$(stats 'sum(s["accepted"] for s in each(NS, "dns"))' "${NSS[@]}")
cmp_ok "${acc:-0}" -ge 1001 "(a) a flow for each source port (accepted $acc, >= 20 x 50 + 1)"
din=$(stats 'sum(s["datagrams_in"] for s in each(NS, "dns"))' "${NSS[@]}")
dout=$(stats 'sum(s["datagrams_out"] for s in each(NS, "dns"))' "${NSS[@]}")
cmp_ok "${dout:-0}" -ge 20000 "(a) 20,000 answers relayed (datagrams in $din, out $dout)"
check_within 15 "(a) after the 2 s idle timeout, no flow is left" \
	stats_true 'all(s["active"] == 0 for s in each(NS, "dns"))' "${NSS[@]}"
check_within 15 "(a) ... and the descriptors are back to their level before ($base)" \
	fds_at_most "$base"
acc=$(stats 'sum(s["accepted"] for s in each(NS, "dns"))' "${NSS[@]}")
idle=$(stats 'sum(c(s, "idle-timeout") for s in each(NS, "dns"))' "${NSS[@]}")
is "$idle" "$acc" "(a) every flow closed as idle-timeout ($idle of $acc)"

# ---- (b) a flood next door --------------------------------------------------------
# G asks at 500 queries a second (4 s); the flood begins once G's first
# queries have come through, and takes less than a second when the machine
# is not slow
start_bg gq ip netns exec "$G" "$PYTHON" "$DNSQ" query --name db.internal \
	--expect 10.0.0.1 --count 2000 --ports 20 --window 8 --rate 500 \
	--retries 8 --timeout-ms 500
asking() { stats_true 'svc(NS[0], "dns")["datagrams_out"] >= 50' "$G"; }
wait_for 10 asking || diag "(b) G's queries were not seen in its stats within 10 s"
start_bg flood ip netns exec "$F" "$PYTHON" "$DNSQ" flood --name db.internal \
	--count 100000 --ports 500
check_bg 120 flood "(b) F sent its 100,000 datagrams"
check_bg 120 gq "(b) meanwhile all 2,000 of G's queries are answered right"
diag "(b) flood: $(cat "$flood_out")" "(b) G: $(cat "$gq_out")"
p99=$(jget p99_ms "$gq_out" 2>/dev/null)
diag "(b) G's p99 during the flood: ${p99:-?} ms"
p99_int=${p99%%.*}
[[ $p99_int =~ ^[0-9]+$ ]] || p99_int=999999
cmp_ok "$p99_int" -lt 2000 "(b) G's p99 below 2 s (${p99:-?} ms)"
diag "(b) F/dns: $(stats 'svc(NS[0], "dns")' "$F")"
check "(b) nsrelayd still runs" daemon_alive
check_within 15 "(b) after the flood, no flow is left in F or G" \
	stats_true 'all(s["active"] == 0 for s in each(NS, "dns"))' "$F" "$G"
check_within 15 "(b) ... and the descriptors are back to their level ($base)" \
	fds_at_most "$base"
stop_daemon
is "$DSTATUS" 0 "(a, b) nsrelayd exits 0"

# ---- (c) a port scan under a small descriptor limit ----------------------------
LIM=400
netns_new S
conf_begin "$T/scan.yaml" "$S" "$G"
conf_service dns -o protocol=udp -o idle_timeout=10s "127.0.0.1:$DP" 127.0.0.53:53
DAEMON_PREFIX=(prlimit "--nofile=$LIM:$LIM")
start_daemon "$CONF"
DAEMON_PREFIX=()
if wait_for 10 udp_up "$S" "$G"; then
	pass "(c) UDP listeners up under RLIMIT_NOFILE $LIM"
else
	daemon_alive || bail "nsrelayd exited at start-up"
	fail "(c) UDP listeners up under RLIMIT_NOFILE $LIM"
fi
limit=$(awk '/^Max open files/ { print $4 "/" $5 }' "/proc/$DPID/limits")
is "$limit" "$LIM/$LIM" "(c) nsrelayd runs with RLIMIT_NOFILE $LIM"
warm_up "$G"
wait_for 10 fds_settled
base=$FDS

# the engine's descriptors, sampled every 5 ms: the most seen, in a file
cat >"$T/sample.py" <<'PY'
import os, sys, time
pid, out = sys.argv[1], sys.argv[2]
top = 0
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end and not os.path.exists(out + ".stop"):
    try:
        n = len(os.listdir("/proc/%s/fd" % pid))
    except OSError:
        break
    if n > top:
        top = n
        with open(out + ".tmp", "w") as f:
            f.write("%d\n" % top)
        os.rename(out + ".tmp", out)
    time.sleep(0.005)
PY
echo 0 >"$T/peak"
start_bg sampler "$PYTHON" "$T/sample.py" "$DPID" "$T/peak" 120
# 3,000 source ports in 0.3 s (all at once, most would die in the
# listener's receive queue); each flow lives 10 s
start_bg scan ip netns exec "$S" "$PYTHON" "$DNSQ" flood --name db.internal \
	--count 3000 --ports 3000 --rate 10000
check_bg 60 scan "(c) S sent one query from each of 3,000 source ports"
held() { stats_true 'c(svc(NS[0], "dns"), "no-resources") > 0 or c(svc(NS[0], "dns"), "limit", "drops") > 0' "$S"; }
check_within 5 "(c) S's scan is held: flows evicted (no-resources) or datagrams dropped (limit)" held
# G's flows are new while S holds what it may
start_bg gs ip netns exec "$G" "$PYTHON" "$DNSQ" query --name db.internal \
	--expect 10.0.0.1 --count 500 --ports 10 --window 4 --retries 8 \
	--timeout-ms 500
check_bg 120 gs "(c) meanwhile all of G's 500 queries, from 10 new source ports, are answered right"
diag "(c) scan: $(cat "$scan_out")" "(c) G: $(cat "$gs_out")"
diag "(c) S/dns: $(stats 'svc(NS[0], "dns")' "$S")" "(c) G/dns: $(stats 'svc(NS[0], "dns")' "$G")"
cmp_ok "$(stats 'svc(NS[0], "dns")["active"]' "$S")" -gt 0 \
	"(c) ... while S still had its flows"
is "$(stats 'c(svc(NS[0], "dns"), "no-resources") + c(svc(NS[0], "dns"), "limit", "drops")' "$G")" 0 \
	"(c) G lost no flow and no datagram to the scan"
check "(c) nsrelayd still runs" daemon_alive
: >"$T/peak.stop"
bg_wait 5 sampler
peak=$(cat "$T/peak")
diag "(c) descriptors: $base before, at most $peak during the scan"
cmp_ok "$peak" -le "$LIM" "(c) the daemon's descriptors never went past $LIM (peak $peak)"
cmp_ok "$peak" -gt "$((base + 10))" "(c) ... while the scan did take descriptors (peak $peak, base $base)"
check_within 30 "(c) after the idle timeout no flow is left and the descriptors are back ($base)" \
	eval "fds_at_most $base && stats_true 'all(s[\"active\"] == 0 for s in each(NS, \"dns\"))' $S $G"
out=$(dnsq_in "$S" query --name db.internal --expect 10.0.0.1 --count 100 \
	--ports 5 --retries 3 --timeout-ms 1000)
ok "$?" "(c) S is served again after its scan" || diag "$out"
stop_daemon
is "$DSTATUS" 0 "(c) nsrelayd exits 0"
done_testing
