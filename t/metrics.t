#!/bin/bash
# SPDX-License-Identifier: MIT
# /metrics: served on metrics.listen, in the Prometheus text format that
# `promtool check metrics` accepts (HELP and TYPE lines, _total on
# counters), with namespace and service labels; after traffic, every number
# of every namespace and service matches the control socket's JSON, the
# veth counters too, and a udp service's datagrams; other paths are 404; a
# provisioned namespace deleted
# behind the daemon's back leaves the page, its veth series with it; a
# reload that moves the port moves the endpoint.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"
command -v promtool >/dev/null || skip_all "promtool not found (Debian: prometheus)"
getent passwd daemon >/dev/null || skip_all "no user daemon"

pool_claim B			# this run's index
pre="nsmt-$$-"
netns_adopt "${pre}daemon"
link_adopt "nsm$B"
ctl=$T/control.sock
port=$((20000 + $$ % 10000))
port2=$((port + 1))

netns_new A
netns_new Z
start_server echo echo
# a UDP echo server on the host, for a udp service
cat >"$T/uecho.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
PY
start_bg uecho "$PYTHON" "$T/uecho.py" "$T/uecho.port"
wait_for 10 test -s "$T/uecho.port" || bail "the UDP echo server did not start"
conf_begin "$T/metrics.yaml" --control none "$A" "$Z"
conf_service talk "127.0.0.1:$echo_port" 127.0.0.1:7000 "[::1]:7000"
conf_service refused "127.0.0.1:1" 127.0.0.1:7001
conf_service dgram -o protocol=udp -o idle_timeout=10m "127.0.0.1:$(cat "$T/uecho.port")" 127.0.0.1:7002
write_tail() {	# write_tail PORT
	cat <<EOF
control:
  path: $ctl
metrics:
  listen: "127.0.0.1:$1"
provision:
  users:
    - { name: daemon, index: $B }
  uid_base: 0
  namespace: "$pre%u"
  host_interface: "nsm%i"
EOF
}
cp "$CONF" "$T/base.yaml"
write_tail "$port" >>"$CONF"
start_daemon "$CONF"
started() { grep -q "started: " "$DLOG"; }
serving() { grep -q "metrics: serving http://127.0.0.1:$port/metrics" "$DLOG"; }
wait_for 10 started || bail "nsrelayd did not start: $(cat "$DLOG")"
serving || bail "metrics.listen is not served: $(grep metrics "$DLOG")"
pass "metrics: serving on 127.0.0.1:$port"
check "listeners up" wait_listeners "$A" "${CONF_LISTEN[@]}"

fetch() {	# fetch URL: the body on stdout; HTTP status in $T/code
	"$PYTHON" - "$1" "$T/code" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    code, body = r.status, r.read()
    ctype = r.headers.get("Content-Type", "")
except urllib.error.HTTPError as e:
    code, body, ctype = e.code, e.read(), ""
open(sys.argv[2], "w").write("%d %s\n" % (code, ctype))
sys.stdout.buffer.write(body)
PY
}

# --- traffic: A/talk 3 connections, A/refused 2 failures; Z nothing
for i in 1 2 3; do
	peer_in "$A" echo --port 7000 --bytes $((i * 1000)) >/dev/null || fail "echo $i"
done
for i in 1 2; do
	peer_in "$A" expect-close --port 7001 --within 5 >/dev/null || fail "refused $i"
done
# A/dgram: 4 datagrams from one port, each echoed
check "A/dgram: 4 datagrams echoed" in_ns "$A" "$PYTHON" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for i in range(4):
    s.sendto(b"x" * (100 + i), ("127.0.0.1", 7002))
    assert s.recv(65535) == b"x" * (100 + i)
'
quiet() { "$NSRELAYCTL" -s "$ctl" status --json | grep -q '"connections":1}'; }
wait_for 5 quiet
check_within 20 "the provisioned namespace is served" \
	sh -c "'$NSRELAYCTL' -s '$ctl' stats --json | grep -q '\"veth\":{\"name\":\"nsm$B\"'"

fetch "http://127.0.0.1:$port/metrics" >"$T/page"
like "$(cat "$T/code")" "^200 text/plain; version=0.0.4" "GET /metrics: 200, text/plain version 0.0.4"
check "promtool check metrics accepts the page" sh -c "promtool check metrics <'$T/page'"
like "$(grep -c '^# TYPE nsrelay_[a-z_]* counter$' "$T/page")" '^[1-9]' "counters are typed"
check "every counter ends in _total" sh -c "! grep '^# TYPE' '$T/page' | grep ' counter\$' | grep -v '_total counter\$'"
check "every metric has HELP and TYPE" "$PYTHON" - "$T/page" <<'PY'
import re, sys
helps, types, names = set(), set(), set()
for line in open(sys.argv[1]):
    m = re.match(r"# (HELP|TYPE) (\S+)", line)
    if m:
        (helps if m.group(1) == "HELP" else types).add(m.group(2))
    elif line.strip():
        names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
# a histogram's samples are its name with _bucket, _sum and _count
hist = {t for t in types if re.search(r"^# TYPE %s histogram$" % t, open(sys.argv[1]).read(), re.M)}
names = {re.sub(r"_(bucket|sum|count)$", "", n) if re.sub(r"_(bucket|sum|count)$", "", n) in hist else n for n in names}
bad = [n for n in names if n not in helps or n not in types or not n.startswith("nsrelay_")]
sys.exit("without HELP/TYPE or prefix: %s" % bad if bad else 0)
PY
grep "namespace=\"$A\",service=\"talk\"" "$T/page" | head -8 | while IFS= read -r l; do diag "$l"; done

"$NSRELAYCTL" -s "$ctl" stats --json >"$T/stats.json"
cat >"$T/match.py" <<'PY'
import json, re, sys
page, js, A, Z = sys.argv[1:]
d = json.load(open(js))
samples = {}
for line in open(page):
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r'([a-z_]+)(\{(.*)\})? (\S+)$', line.rstrip("\n"))
    labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
    samples[(m.group(1), labels)] = float(m.group(4))
bad = []
def want(name, labels, v):
    got = samples.get((name, tuple(sorted(labels.items()))))
    if got != v:
        bad.append("%s%s: page %s, JSON %s" % (name, labels, got, v))
keys = {"connections_active": "active", "connections_accepted_total": "accepted",
        "bytes_in_total": "bytes_in", "bytes_out_total": "bytes_out",
        "connect_failures_total": "connect_failures", "timeouts_total": "timeouts"}
n = 0
for ns in d["namespaces"]:
    for s in ns["services"]:
        lab = {"namespace": ns["name"], "service": s["name"]}
        for k, j in keys.items():
            want("nsrelay_" + k, lab, s[j]); n += 1
        for r, v in s["closed"].items():	# reasons not seen: left out
            want("nsrelay_connections_closed_total", dict(lab, reason=r), v or None)
        if s.get("protocol") == "udp":
            for k in ("in", "out"):
                want("nsrelay_datagrams_total", dict(lab, direction=k),
                     s["datagrams_" + k])
            for r, v in s["drops"].items():
                want("nsrelay_datagram_drops_total", dict(lab, reason=r),
                     v or None)
        elif ("nsrelay_datagrams_total", tuple(sorted(dict(lab, direction="in").items()))) in samples:
            bad.append("datagrams of a tcp service: %s" % lab)
        for l in s["listeners"]:
            want("nsrelay_listener_up", dict(lab, address=l["address"]),
                 1 if l["state"] == "listening" else 0)
    if ns["veth"]:
        lab = {"namespace": ns["name"], "interface": ns["veth"]["name"]}
        # counted again by the page, a moment later: at least the JSON's
        for k in ("receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets"):
            j = {"receive": "rx", "transmit": "tx"}[k.split("_")[0]] + "_" + k.split("_")[1]
            got = samples.get(("nsrelay_veth_%s_total" % k, tuple(sorted(lab.items()))))
            if got is None or got < ns["veth"][j]:
                bad.append("veth %s: page %s, JSON %s" % (k, got, ns["veth"][j]))
want("nsrelay_namespaces", {}, d["counts"]["namespaces"])
want("nsrelay_listeners", {}, d["counts"]["listeners"])
want("nsrelay_config_generation", {}, d["config"]["generation"])
# the exchange itself
talk = [s for ns in d["namespaces"] if ns["name"] == A for s in ns["services"] if s["name"] == "talk"][0]
if (talk["accepted"], talk["bytes_in"], talk["bytes_out"]) != (3, 6000, 6000):
    bad.append("A/talk in the JSON: %s" % talk)
want("nsrelay_connect_failures_total", {"namespace": A, "service": "refused"}, 2)
dg = [s for ns in d["namespaces"] if ns["name"] == A for s in ns["services"] if s["name"] == "dgram"][0]
if (dg["protocol"], dg["accepted"], dg["datagrams_in"], dg["datagrams_out"], dg["bytes_in"]) != ("udp", 1, 4, 4, 406):
    bad.append("A/dgram in the JSON: %s" % dg)
want("nsrelay_bytes_in_total", {"namespace": Z, "service": "talk"}, 0)
if not any(ns["veth"] for ns in d["namespaces"]):
    bad.append("no veth in the JSON")
print("%d per-service numbers compared" % n)
sys.exit("\n".join(bad) if bad else 0)
PY
# the page is fetched after the JSON: its veth counters (a cache of its
# own, at most 500 ms old) may lag until it refreshes
matches() {
	fetch "http://127.0.0.1:$port/metrics" >"$T/page.now" &&
	"$PYTHON" "$T/match.py" "$T/page.now" "$T/stats.json" "$A" "$Z"
}
check_within 5 "the page's numbers match the JSON, every namespace and service, veth included" matches

fetch "http://127.0.0.1:$port/other" >/dev/null
like "$(cat "$T/code")" "^404" "another path: 404"

# --- the provisioned namespace deleted (ip netns del): its host veth goes,
# the daemon forgets it, and the page no longer has its series
ip netns del "${pre}daemon"
forgotten() { grep -q "ns ${pre}daemon: gone with host link nsm$B deleted" "$DLOG"; }
check_within 20 "a provisioned namespace deleted: the daemon forgets it" forgotten
veth_gone() {
	fetch "http://127.0.0.1:$port/metrics" >"$T/page.gone" &&
	! grep -q "namespace=\"${pre}daemon\"" "$T/page.gone"
}
check_within 5 "... the page no longer has its series" veth_gone
check "... and promtool accepts it" sh -c "promtool check metrics <'$T/page.gone'"

# --- a reload that moves the endpoint
cp "$T/base.yaml" "$CONF"
write_tail "$port2" >>"$CONF"
out=$("$NSRELAYCTL" -s "$ctl" reload)
is "$out" "ok generation 2" "reload with metrics.listen moved"
fetch "http://127.0.0.1:$port2/metrics" >"$T/page2"
like "$(grep '^nsrelay_config_generation' "$T/page2")" ' 2$' "the new port serves, generation 2"
fetch "http://127.0.0.1:$port/metrics" >/dev/null 2>&1
check "the old port is closed" sh -c "! ss -Hltn 'sport = :$port' | grep -q ."

check "nsrelayd still runs" daemon_alive
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
