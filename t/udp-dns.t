#!/bin/bash
# SPDX-License-Identifier: MIT
# UDP services with a real resolver: dnsmasq on a loopback port of the
# host, relayed as the service "dns" (protocol: udp, idle_timeout 2s) on
# 127.0.0.53:53 and [::1]:53 in two namespaces, with "dns-tcp" on the same
# addresses over TCP, for the answers too big for a datagram:
#  - dig and the C library's resolver (getent, with a resolv.conf naming
#    127.0.0.53 in /etc/netns/NS) get the host record, in both namespaces
#    and over IPv6;
#  - a TXT record of 1,020 bytes: without EDNS its answer is truncated over
#    UDP and dig gets it whole over TCP (through dns-tcp, whose counter
#    grows); with EDNS the answer (> 1,000 bytes) comes whole in one
#    relayed datagram;
#  - dnsq.py's 500 queries from 20 source ports are all answered, each with
#    its own id;
#  - the stats: protocol udp (tcp for dns-tcp), flows begun, datagrams and
#    bytes both ways, no drops; each namespace its own counters; after the
#    2 s idle timeout no flow is left, all closed as idle-timeout;
#  - a UDP service whose upstream port has nothing listening: the query
#    gets no answer, and the ICMP port unreachable ends the flow at once
#    (connect-failed), long before its 30 s idle timeout;
#  - a reload (SIGHUP) of the same config: queries sent across it are all
#    answered, and so are those after it.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
. "$top_srcdir/t/dns-lib.sh"
# svc NS SERVICE EXPR: EXPR over that service's stats object s; c(KEY[,
# SECTION]) a counter of its "closed" (or of SECTION), by its name
svc() {
	ctl stats "$1" --json | "$PYTHON" -c "$_DNS_PY"'
s = svc(sys.argv[1], sys.argv[2])
c0 = c
c = lambda k, sect="closed": c0(s, k, sect)
out(eval(sys.argv[3]))' "$1" "$2" "$3"
}
svc_true() { [ "$(svc "$@")" = true ]; }
jget() {	# jget KEY: KEY of the JSON line on stdin
	"$PYTHON" -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"
}

# ---- the resolver on the host -----------------------------------------------
# big.internal: four strings of 255 letters, 1,020 bytes of TXT
TXT=()
for i in 0 1 2 3; do
	TXT+=("$("$PYTHON" -c 'import string, sys
a = string.ascii_lowercase * 20
k = int(sys.argv[1])
print(a[k:k + 255])' "$i")")
done
TXT_ALL=$(printf '%s' "${TXT[@]}")
txt_arg=$(IFS=,; echo "${TXT[*]}")
start_dnsmasq --txt-record="big.internal,$txt_arg" \
	--log-queries --log-facility="$T/dnsmasq.log"
direct=$(dig @127.0.0.1 -p "$DP" big.internal TXT +noedns +time=2 +tries=1 2>&1)
like "$direct" 'Truncated, retrying in TCP mode' \
	"directly: big.internal's answer is truncated over UDP and dig retries over TCP"

# an upstream port with nothing behind it, UDP
DEAD=$(free_port) || bail "no free port"

# ---- the daemon ---------------------------------------------------------------
netns_new A
netns_new B
RESOLV_DIRS=()
ETC_NETNS_MADE=
test_cleanup() {
	local d
	for d in "${RESOLV_DIRS[@]}"; do
		rm -f "$d/resolv.conf"
		rmdir "$d" 2>/dev/null
	done
	[ -z "$ETC_NETNS_MADE" ] || rmdir /etc/netns 2>/dev/null
}
if [ ! -d /etc/netns ]; then
	mkdir /etc/netns || bail "mkdir /etc/netns"
	ETC_NETNS_MADE=1
fi
for ns in "$A" "$B"; do
	# getaddrinfo(AI_ADDRCONFIG) (getent ahostsv4) asks for nothing where
	# no IPv4 address but loopback ones is configured: one of TEST-NET-1
	ip -n "$ns" addr add 192.0.2.1/32 dev lo || bail "address in $ns"
	mkdir "/etc/netns/$ns" || bail "mkdir /etc/netns/$ns"
	RESOLV_DIRS+=("/etc/netns/$ns")
	printf 'nameserver 127.0.0.53\noptions timeout:2 attempts:2\n' \
		>"/etc/netns/$ns/resolv.conf"
done

conf_begin "$T/dns.yaml" "$A" "$B"
conf_service dns -o protocol=udp -o idle_timeout=2s \
	"127.0.0.1:$DP" 127.0.0.53:53 "[::1]:53"
conf_service dns-tcp "127.0.0.1:$DP" 127.0.0.53:53 "[::1]:53"
conf_service dead -o protocol=udp -o idle_timeout=30s \
	"127.0.0.1:$DEAD" 127.0.0.54:53
# daemon_up waits for TCP listeners: those of dns-tcp; the UDP ones below
CONF_LISTEN=(127.0.0.53:53 "[::1]:53")
daemon_up -d "TCP listeners up (dns-tcp)" "$CONF"
udp_up() {
	local ns a
	for ns in "$A" "$B"; do
		for a in 127.0.0.53:53 "[::1]:53" 127.0.0.54:53; do
			_listening "$ns" "udp/$a" || { echo "$ns $a"; return 1; }
		done
	done
}
check_within 10 "UDP listeners up in both namespaces (dns, dead)" udp_up

# ---- answers ------------------------------------------------------------------
is "$(in_ns "$A" dig @127.0.0.53 db.internal +short +time=2 +tries=2)" 10.0.0.1 \
	"A: dig @127.0.0.53 db.internal"
is "$(in_ns "$B" dig @127.0.0.53 db.internal +short +time=2 +tries=2)" 10.0.0.1 \
	"B: dig @127.0.0.53 db.internal"
is "$(in_ns "$A" dig @::1 db.internal +short +time=2 +tries=2)" 10.0.0.1 \
	"A: dig @::1 db.internal (IPv6 listener)"
if grep -Eq '^hosts:.*[[:space:]]dns([[:space:]]|$)' /etc/nsswitch.conf 2>/dev/null; then
	like "$(in_ns "$A" getent hosts db.internal)" '^10\.0\.0\.1[[:space:]]+db\.internal$' \
		"A: getent hosts db.internal (the C library's resolver, resolv.conf 127.0.0.53)"
	like "$(in_ns "$B" getent ahostsv4 db.internal | head -n1)" '^10\.0\.0\.1[[:space:]]' \
		"B: getent ahostsv4 db.internal"
else
	ok 0 "A: getent hosts db.internal # SKIP nsswitch.conf has no dns for hosts"
	ok 0 "B: getent ahostsv4 db.internal # SKIP nsswitch.conf has no dns for hosts"
fi

# the big TXT record: truncated over UDP, whole over TCP
tcp0=$(svc "$A" dns-tcp 's["accepted"]')
out=$(in_ns "$A" dig @127.0.0.53 big.internal TXT +noedns +time=3 +tries=2 2>&1)
like "$out" 'Truncated, retrying in TCP mode' \
	"A: big.internal TXT without EDNS: truncated over UDP, dig retries over TCP"
got=$(grep -E '^big\.internal\.[[:space:]]' <<<"$out" | sed 's/.*[[:space:]]TXT[[:space:]]//' | tr -d '" ')
is "$got" "$TXT_ALL" "A: ... and gets the whole record (1,020 bytes) over TCP"
like "$out" 'SERVER: 127\.0\.0\.53#53\(127\.0\.0\.53\) \(TCP\)' "A: ... dig says the answer came over TCP"
tcp1=$(svc "$A" dns-tcp 's["accepted"]')
cmp_ok "${tcp1:-0}" -gt "${tcp0:-0}" "A: ... through dns-tcp (accepted $tcp0 -> $tcp1)"
out=$(in_ns "$A" dig @127.0.0.53 big.internal TXT +bufsize=4096 +time=3 +tries=2 2>&1)
got=$(grep -E '^big\.internal\.[[:space:]]' <<<"$out" | sed 's/.*[[:space:]]TXT[[:space:]]//' | tr -d '" ')
if [ "$got" = "$TXT_ALL" ] && ! grep -q Truncated <<<"$out" &&
	grep -q 'SERVER: .*(UDP)' <<<"$out"; then
	pass "A: with EDNS (4096) the same answer comes whole in one datagram over UDP"
else
	fail "A: with EDNS (4096) the same answer comes whole in one datagram over UDP" "$out"
fi
out=$(dnsq_in "$A" query --name big.internal --type TXT --expect-len 1020 \
	--edns 4096 --count 100 --ports 4 --retries 3 --timeout-ms 1000)
ok "$?" "A: dnsq: 100 big TXT answers over UDP, each whole" || diag "$out"

# many queries, many source ports
out=$(dnsq_in "$A" query --name db.internal --expect 10.0.0.1 --count 500 \
	--ports 20 --window 32 --retries 3 --timeout-ms 1000)
st=$?
ok "$st" "A: dnsq: 500 queries from 20 source ports, all answered right" ||
	diag "$out"
is "$(jget wrong <<<"$out")" 0 "A: ... no answer with another id or a wrong address"
diag "dnsq: $out"

# ---- stats ----------------------------------------------------------------
is "$(svc "$A" dns 's.get("protocol")')" udp "stats: dns has protocol udp"
is "$(svc "$A" dns-tcp 's.get("protocol")')" tcp "stats: dns-tcp has protocol tcp"
acc=$(svc "$A" dns 's["accepted"]')
cmp_ok "${acc:-0}" -ge 21 "stats: A/dns: a flow for each source port (accepted $acc >= 20 + dig's)"
cmp_ok "$(svc "$A" dns 's["datagrams_in"]')" -ge 601 \
	"stats: A/dns: datagrams_in counts the queries (>= 601)"
cmp_ok "$(svc "$A" dns 's["datagrams_out"]')" -ge 601 \
	"stats: A/dns: datagrams_out counts the answers (>= 601)"
check "stats: A/dns: bytes both ways, more back than in" \
	svc_true "$A" dns 's["bytes_in"] > 0 and s["bytes_out"] > s["bytes_in"]'
is "$(svc "$A" dns 'sorted(s["drops"].items())')" \
	'[["client-send", 0], ["limit", 0], ["no-resources", 0], ["no-upstream", 0], ["upstream-send", 0]]' \
	"stats: A/dns: drops has its five counters, all 0"
b_in=$(svc "$B" dns 's["datagrams_in"]')
b_acc=$(svc "$B" dns 's["accepted"]')
check "stats: B/dns: its own counters (accepted $b_acc, datagrams_in $b_in)" \
	test "${b_acc:-0}" -ge 1 -a "${b_acc:-0}" -le 4 -a "${b_in:-0}" -ge 1 -a "${b_in:-0}" -lt 100
diag "A/dns: $(svc "$A" dns 's')"
check_within 10 "A/dns: after the 2 s idle timeout no flow is left (active 0)" \
	svc_true "$A" dns 's["active"] == 0'
check_within 5 "B/dns: ... nor in B" svc_true "$B" dns 's["active"] == 0'
acc=$(svc "$A" dns 's["accepted"]')
is "$(svc "$A" dns 'c("idle-timeout")')" "$acc" "A/dns: every flow ($acc) closed as idle-timeout"

# ---- an upstream with nothing listening ------------------------------------
# one query, its answer awaited 3 s; the flow should end long before that
t0=$(_now_us)
start_bg deadq ip netns exec "$A" "$PYTHON" "$DNSQ" query --server 127.0.0.54 \
	--name db.internal --expect 10.0.0.1 --count 1 --ports 1 --retries 0 \
	--timeout-ms 3000
ended() { svc_true "$A" dead 's["active"] == 0 and s["accepted"] >= 1 and c("connect-failed") >= 1'; }
check_within 10 "dead: the ICMP port unreachable ends the flow (connect-failed), well before its 30 s idle timeout" ended
diag "dead: seen ended $(( ($(_now_us) - t0) / 1000 )) ms after the query was started; $(svc "$A" dead 's')"
bg_wait 10 deadq
st=$?
cmp_ok "$st" -ne 0 "dead: the query gets no answer (dnsq exit $st)" || diag "$(cat "$T/deadq.out")"
like "$(cat "$T/deadq.out")" '"answered": 0, "wrong": 0, "lost": 1' "dead: ... lost, nothing else came back"
is "$(svc "$A" dead 's["accepted"]')" 1 "dead: one flow begun"

# ---- a reload that keeps the config ------------------------------------------
in0=$(svc "$A" dns 's["datagrams_in"]')
[[ $in0 =~ ^[0-9]+$ ]] || in0=0
start_bg during ip netns exec "$A" "$PYTHON" "$DNSQ" query --name db.internal \
	--expect 10.0.0.1 --count 3000 --ports 10 --window 4 --rate 1000 \
	--retries 5 --timeout-ms 300
# the reload once those queries (3 s of them) flow
flowing() { svc_true "$A" dns 's["datagrams_in"] >= '"$((in0 + 100))"; }
wait_for 10 flowing
generation() { grep -q "reloaded .*: generation $1," "$DLOG"; }
kill -HUP "$DPID"
check_within 10 "SIGHUP: reloaded (generation 2)" generation 2
_gone "$during_pid" && diag "(the queries had all been answered by the reload's end)"
check_bg 60 during "reload: queries sent across it are all answered"
diag "across the reload: $(cat "$during_out")"
is "$(in_ns "$A" dig @127.0.0.53 db.internal +short +time=2 +tries=2)" 10.0.0.1 \
	"after the reload: dig in A"
is "$(in_ns "$B" dig @127.0.0.53 db.internal +short +time=2 +tries=2)" 10.0.0.1 \
	"after the reload: dig in B"
out=$(in_ns "$B" dig @127.0.0.53 big.internal TXT +noedns +time=3 +tries=2 2>&1)
got=$(grep -E '^big\.internal\.[[:space:]]' <<<"$out" | sed 's/.*[[:space:]]TXT[[:space:]]//' | tr -d '" ')
is "$got" "$TXT_ALL" "after the reload: B gets the big TXT over TCP"
out=$(dnsq_in "$B" query --name db.internal --expect 10.0.0.1 --count 200 \
	--ports 10 --retries 3 --timeout-ms 1000)
ok "$?" "after the reload: dnsq in B, 200 queries answered right" || diag "$out"
check "dnsmasq saw the relayed queries" grep -q 'query\[A\] db.internal from 127.0.0.1' "$T/dnsmasq.log"

check "nsrelayd still runs" daemon_alive
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
