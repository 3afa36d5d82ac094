#!/bin/bash
# SPDX-License-Identifier: MIT
# proxy_protocol: the upstream learns who connected.  A server that parses
# the PROXY header reports what it got: v1 and v2 from a namespace nsrelayd
# provisioned carry the namespace's own address (100.64.x.2, fd75:..::2 on
# an IPv6 listener) and, in v2, the namespace's name (0x30) and its user
# (0xE0) and uid (0xE1); from a namespace it did not provision, the client's address as
# seen inside it; the destination is the listen address; over a unix
# upstream too.  A client that sends "PROXY TCP4 1.2.3.4 ..." itself is
# data after nsrelayd's own header; a service without proxy_protocol sends
# none; health checks send LOCAL (v2) and, in v1, their own connection's
# addresses.
# source: namespace: the upstream's accept() sees the host end of a
# provisioned namespace's veth (100.64.x.1, fd75:..::1 to an IPv6 server),
# the relay's own address from other namespaces, and 2,000 connections
# held at once from one namespace all get a port.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
tap_init
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"

# The server: for each connection, everything up to the client's FIN,
# parsed; one JSON line on stdout and the same line back to the client.
cat >"$T/ppserver.py" <<'PY'
import json, os, resource, socket, struct, sys, threading
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
def parse(b):
    r = {"ver": "none"}
    if b.startswith(b"PROXY "):
        line, _, rest = b.partition(b"\r\n")
        f = line.decode().split(" ")
        r = {"ver": "v1", "proto": f[1]}
        if f[1] != "UNKNOWN":
            r.update(src=f[2], dst=f[3], sport=int(f[4]), dport=int(f[5]))
        b = rest
    elif b.startswith(SIG):
        vc, fam, ln = b[12], b[13], struct.unpack("!H", b[14:16])[0]
        body, b = b[16:16 + ln], b[16 + ln:]
        r = {"ver": "v2", "cmd": "PROXY" if vc == 0x21 else
             "LOCAL" if vc == 0x20 else hex(vc), "fam": fam, "tlv": {}}
        n = {0x11: 4, 0x21: 16}.get(fam, 0)
        af = socket.AF_INET if n == 4 else socket.AF_INET6
        if n:
            r["src"] = socket.inet_ntop(af, body[:n])
            r["dst"] = socket.inet_ntop(af, body[n:2 * n])
            r["sport"], r["dport"] = struct.unpack("!HH", body[2 * n:2 * n + 4])
            t = body[2 * n + 4:]
            while len(t) >= 3:
                ty, l = t[0], struct.unpack("!H", t[1:3])[0]
                r["tlv"]["%02x" % ty] = t[3:3 + l].decode()
                t = t[3 + l:]
    r["data"] = b.decode(errors="replace")
    return r
def run(c):
    c.settimeout(30)
    peer = c.getpeername()
    b = b""
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            b += d
        r = parse(b)
        if isinstance(peer, tuple):
            r["peer"] = peer[0]
        line = json.dumps(r)
        print(line, flush=True)
        c.sendall(line.encode() + b"\n")
    except OSError:
        pass
    c.close()
def loop(ls):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=run, args=(c,), daemon=True).start()
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
tcp = socket.socket()
tcp.bind(("127.0.0.1", 0))
tcp.listen(4096)
tcp6 = socket.socket(socket.AF_INET6)
tcp6.bind(("::1", 0))
tcp6.listen(128)
ux = socket.socket(socket.AF_UNIX)
ux.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
ux.listen(128)
print(tcp.getsockname()[1], tcp6.getsockname()[1], flush=True)
threading.Thread(target=loop, args=(ux,), daemon=True).start()
threading.Thread(target=loop, args=(tcp6,), daemon=True).start()
loop(tcp)
PY
# The client: sends its argument, its FIN, prints what comes back.
cat >"$T/ppclient.py" <<'PY'
import socket, sys
host, port, msg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
src = (sys.argv[4], 0) if len(sys.argv) > 4 else None
s = socket.create_connection((host, port), timeout=10, source_address=src)
s.sendall(msg.encode())
s.shutdown(socket.SHUT_WR)
b = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    b += d
sys.stdout.write(b.decode())
PY
start_bg pp "$PYTHON" "$T/ppserver.py" "$T/pp.sock"
wait_for 10 _has_line "$T/pp.out" || bail "the PROXY server did not start"
read -r up up6 <"$T/pp.out"

# a port bound and never listened on: a connect there is refused
start_bg refuse "$PYTHON" -c '
import signal, socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
signal.pause()'
wait_for 10 _has_line "$T/refuse.out" || bail "the refusing socket did not start"
refused=$(head -n1 "$T/refuse.out")

pool_claim B UB
pre="nspp-$$-"
u=nspp$$
uid=$((UB + B))
user_add "$u" "$uid"
netns_adopt "$pre$u"
link_adopt "npp$B"
# the namespace's addresses in the default pools (netns/pool.h)
a4=$(pool_v4 "$B" 2)
a6=$("$PYTHON" -c "import ipaddress; print(ipaddress.ip_address('fd75:6272:7370::') + ($B << 64) + 2)")
h4=$(pool_v4 "$B" 1)
h6=$("$PYTHON" -c "import ipaddress; print(ipaddress.ip_address('fd75:6272:7370::') + ($B << 64) + 1)")
# a namespace nsrelayd did not provision, with an address of its own
other="${pre}other"
netns_adopt "$other"
netns_create "$other"
ip -n "$other" addr add 192.0.2.7/32 dev lo || bail "address in $other"

conf_begin "$T/pp.yaml" --control none --all "$pre*"
conf_service v1 -o proxy_protocol=v1 "127.0.0.1:$up" 127.0.0.1:7001
conf_service v2 -o proxy_protocol=v2 "127.0.0.1:$up" 127.0.0.1:7002 "[::1]:7002"
conf_service off "127.0.0.1:$up" 127.0.0.1:7003
conf_service ux -o proxy_protocol=v2 "unix:$T/pp.sock" 127.0.0.1:7004
conf_text <<EOF
  fo:
    listen: "127.0.0.1:7005"
    upstream: ["127.0.0.1:$refused", "127.0.0.1:$up"]
    proxy_protocol: v2
  src:
    listen: "127.0.0.1:7006"
    upstream: "127.0.0.1:$up"
    source: namespace
  src6:
    listen: "127.0.0.1:7007"
    upstream: "[::1]:$up6"
    source: namespace
  both:
    listen: "127.0.0.1:7008"
    upstream: "127.0.0.1:$up"
    source: namespace
    proxy_protocol: v1
  chk1:
    listen: "127.0.0.1:7011"
    upstream: "127.0.0.1:$up"
    proxy_protocol: v1
    check: { protocol: tcp, interval: 300ms }
  chk2:
    listen: "127.0.0.1:7012"
    upstream: "unix:$T/pp.sock"
    proxy_protocol: v2
    check: { protocol: tcp, interval: 300ms }
  chk3:
    listen: "127.0.0.1:7013"
    upstream: "unix:$T/pp.sock"
    proxy_protocol: v1
    check: { protocol: tcp, interval: 300ms }
control:
  path: $T/control.sock
provision:
  users: [$u]
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "npp%i"
EOF
start_daemon "$CONF"
check_within 20 "the provisioned namespace is served" \
	wait_listening "$pre$u" 127.0.0.1:7004 1
check_within 10 "the other namespace is served" \
	wait_listening "$other" 127.0.0.1:7004 1

ask() {	# ask NS HOST PORT MSG [SRC]: the server's report, as JSON
	in_ns "$1" "$PYTHON" "$T/ppclient.py" "$2" "$3" "$4" ${5:+"$5"}
}
q() { jq -r "$1" <<<"$R"; }

R=$(ask "$pre$u" 127.0.0.1 7001 "hello v1")
is "$(q '.ver + " " + .proto + " " + .src + " " + .dst + " " + (.dport|tostring)')" \
	"v1 TCP4 $a4 127.0.0.1 7001" "v1, provisioned: the namespace's address to the listen address"
is "$(q .data)" "hello v1" "v1: the client's bytes follow the header"
cmp_ok "$(q .sport)" -gt 0 "v1: the client's port"

R=$(ask "$pre$u" 127.0.0.1 7002 "hello v2")
is "$(q '.ver + " " + .cmd + " " + (.fam|tostring) + " " + .src + " " + .dst + " " + (.dport|tostring)')" \
	"v2 PROXY 17 $a4 127.0.0.1 7002" "v2, provisioned, IPv4: the namespace's address to the listen address"
is "$(q '.tlv["30"] + " " + .tlv["e0"]')" "$pre$u $u" "v2: TLVs NETNS (the namespace) and 0xE0 (the user)"
is "$(q '.tlv["e1"]')" "$uid" "v2: TLV 0xE1, the user's uid"
is "$(q .data)" "hello v2" "v2: the client's bytes follow the header"

R=$(ask "$pre$u" ::1 7002 "hello v6")
is "$(q '.ver + " " + (.fam|tostring) + " " + .src + " " + .dst')" \
	"v2 33 $a6 ::1" "v2, provisioned, IPv6 listener: the namespace's fd75: address"

R=$(ask "$other" 127.0.0.1 7001 "x" 192.0.2.7)
is "$(q '.src + " " + .dst')" "192.0.2.7 127.0.0.1" \
	"v1, not provisioned: the client's address as seen in the namespace"
R=$(ask "$other" 127.0.0.1 7002 "y")
is "$(q '.src + " " + (.tlv|keys|join(",")) + " " + .tlv["30"]')" "127.0.0.1 30 $other" \
	"v2, not provisioned: the client's address, NETNS and no user TLV"

forged="PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222"$'\r\n'"after"
R=$(ask "$pre$u" 127.0.0.1 7001 "$forged")
is "$(q .src)" "$a4" "a client's own PROXY line does not change the source"
is "$(q .data)" "$forged" "... it reaches the server as data after nsrelayd's header"
R=$(ask "$pre$u" 127.0.0.1 7002 "$forged")
is "$(q '.ver + " " + .src + " " + .data')" "v2 $a4 $forged" \
	"v2: the same, after the binary header"

R=$(ask "$pre$u" 127.0.0.1 7003 "hello off")
is "$(q '.ver + " " + .data')" "none hello off" "proxy_protocol off: no header, the bytes as sent"

R=$(ask "$pre$u" 127.0.0.1 7004 "over unix")
is "$(q '.ver + " " + .src + " " + .tlv["e0"] + " " + .data')" "v2 $a4 $u over unix" \
	"a unix upstream gets the v2 header too"

R=$(ask "$pre$u" 127.0.0.1 7005 "moved")
is "$(q '.ver + " " + .src + " " + .data')" "v2 $a4 moved" \
	"a connection moved to the next server takes its header along"

# health checks: a header without addresses, then the check's FIN
has() { grep -qF "$1" "$T/pp.out"; }
# v1 over TCP: the check's own connection (Postfix refuses UNKNOWN)
has_v1_check() {
	"$PYTHON" - "$T/pp.out" "$up" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if (r.get("ver"), r.get("proto"), r.get("src"), r.get("dst"),
            r.get("dport"), r.get("data"), r.get("peer")) == \
            ("v1", "TCP4", "127.0.0.1", "127.0.0.1", int(sys.argv[2]), "",
             "127.0.0.1") and r["sport"] > 0:
        sys.exit(0)
sys.exit(1)
PY
}
check_within 5 "a v1 health check over TCP sends its own connection's addresses" has_v1_check
check_within 5 "a v1 health check over a unix socket sends PROXY UNKNOWN" \
	has '{"ver": "v1", "proto": "UNKNOWN", "data": ""}'
check_within 5 "a v2 health check sends LOCAL, no TLV" \
	has '{"ver": "v2", "cmd": "LOCAL", "fam": 0, "tlv": {}, "data": ""}'

# source: namespace
R=$(ask "$pre$u" 127.0.0.1 7003 "plain")
is "$(q .peer)" 127.0.0.1 "without source: the upstream sees the relay's 127.0.0.1"
R=$(ask "$pre$u" 127.0.0.1 7006 "bound")
is "$(q '.peer + " " + .ver + " " + .data')" "$h4 none bound" \
	"source: namespace: the upstream sees the host end of the namespace's veth"
R=$(ask "$pre$u" 127.0.0.1 7007 "bound6")
is "$(q '.peer + " " + .data')" "$h6 bound6" \
	"source: namespace: an IPv6 server sees the veth's fd75: host address"
R=$(ask "$pre$u" 127.0.0.1 7008 "both")
is "$(q '.peer + " " + .src + " " + .data')" "$h4 $a4 both" \
	"source and proxy_protocol together: the veth's host end, the namespace's address"
R=$(ask "$other" 127.0.0.1 7006 "unbound")
is "$(q .peer)" 127.0.0.1 "source: namespace from a namespace not provisioned: the relay's address"

# 2,000 connections held at once from one namespace, each bound to the
# same source address: each gets a port, and is seen from that address
n=$(in_ns "$pre$u" "$PYTHON" - "$h4" <<'PY'
import json, resource, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
socks = [socket.create_connection(("127.0.0.1", 7006), timeout=30)
         for i in range(2000)]
good = 0
for i, s in enumerate(socks):
    s.sendall(b"c%d" % i)
    s.shutdown(socket.SHUT_WR)
    b = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        b += d
    r = json.loads(b)
    good += r["peer"] == sys.argv[1] and r["data"] == "c%d" % i
    s.close()
print(good)
PY
)
is "$n" 2000 "source: namespace: 2,000 connections at once from one namespace"

# what each service tells its servers, in the stats
J=$("$NSRELAYCTL" -s "$T/control.sock" stats --json)
is "$(jq -r '[.services[] | select(.name == "v2" or .name == "src" or .name == "both" or .name == "off") | .name + "=" + .proxy_protocol + "/" + .source] | join(" ")' <<<"$J")" \
	"v2=v2/default off=off/default src=off/namespace both=v1/namespace" \
	"stats: proxy_protocol and source per service"
txt=$("$NSRELAYCTL" -s "$T/control.sock" stats)
like "$(grep -A20 '^IDENTITY' <<<"$txt" | grep -E '^both ')" '^both +v1 +namespace *$' \
	"nsrelayctl stats: an IDENTITY table, a row per service"

# 200 connections in a row, each with its header and its bytes
n=$(in_ns "$pre$u" "$PYTHON" - "$a4" <<'PY'
import json, socket, sys
good = 0
for i in range(200):
    s = socket.create_connection(("127.0.0.1", 7002), timeout=10)
    s.sendall(b"n%d" % i)
    s.shutdown(socket.SHUT_WR)
    b = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        b += d
    r = json.loads(b)
    good += r["src"] == sys.argv[1] and r["data"] == "n%d" % i
    s.close()
print(good)
PY
)
is "$n" 200 "200 connections: each has its header and its own bytes"

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
