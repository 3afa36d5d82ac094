#!/bin/bash
# SPDX-License-Identifier: MIT
# protocol: udp beyond DNS: datagrams go whole and one for one (sizes from
# 1 byte to 65,507, a burst never merged, in order), to a unix datagram
# server too; source: namespace binds a flow to the host end of a
# provisioned namespace's veth; a service's connections_per_namespace
# caps its live flows, a new client ending the namespace's least recently
# used flow (no-resources) while another namespace is untouched; a reload
# that turns a service from tcp into udp on the same address closes the TCP
# listener and opens a UDP socket; a namespace deleted with flows live ends
# them; at a stop live flows end at once, so they never hold it for the
# shutdown grace.  A tenant's socket on a udp listen address is not shared: the
# bind fails and is retried until it goes.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"

chmod 0711 "$T"
pool_claim B UB
pre="nsur-$$-"
u=nsur$$
user_add "$u" $((UB + B))
netns_adopt "$pre$u"
link_adopt "nur$B"
h4=$(pool_v4 "$B" 1)
A="${pre}a"
C="${pre}c"
netns_adopt "$A"
netns_adopt "$C"
netns_create "$A"
netns_create "$C"
ctl=$T/control.sock

# Echo servers on the host: UDP (each datagram back, prefixed with the
# address it came from and "|"), and unix datagram (each back as it is).
cat >"$T/echo.py" <<'PY'
import os, socket, sys
kind, out = sys.argv[1], sys.argv[2]
if kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.1", 0))
    where = "%d" % s.getsockname()[1]
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(out + ".sock")
    os.chmod(out + ".sock", 0o666)
    where = out + ".sock"
open(out + ".tmp", "w").write(where + "\n")
os.rename(out + ".tmp", out)
while True:
    d, a = s.recvfrom(65535)
    if kind == "udp" and d.startswith(b"who"):
        d = a[0].encode() + b"|" + d
    s.sendto(d, a)
PY
start_bg uecho "$PYTHON" "$T/echo.py" udp "$T/uecho"
start_bg xecho "$PYTHON" "$T/echo.py" unix "$T/xecho"
wait_for 10 test -s "$T/uecho" -a -s "$T/xecho" || bail "echo servers did not start"
start_server echo echo
up=127.0.0.1:$(cat "$T/uecho")

write_conf() {	# write_conf PROTOCOL: the service flip's
	conf_begin "$T/u.yaml" --control "$ctl" --all "$pre*"
	conf_service echo -o protocol=udp -o idle_timeout=10m "$up" 127.0.0.1:7100 "[::1]:7100"
	conf_service unix -o protocol=udp -o idle_timeout=10m "unix:$(cat "$T/xecho")" 127.0.0.1:7101
	conf_service src -o protocol=udp -o source=namespace "$up" 127.0.0.1:7102
	conf_service capped -o protocol=udp -o idle_timeout=10m \
		-o "limits={connections_per_namespace: 3}" "$up" 127.0.0.1:7103
	conf_service squat -o protocol=udp "$up" 127.0.0.1:7105
	if [ "$1" = tcp ]; then
		conf_service flip "127.0.0.1:$echo_port" 127.0.0.1:7104
	else
		conf_service flip -o protocol=udp "$up" 127.0.0.1:7104
	fi
	conf_text <<EOF
shutdown_grace: 60s
provision:
  users: [$u]
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "nur%i"
EOF
}
# a tenant's own socket on 127.0.0.1:7105 in C before the daemon: bind
# fails there (EADDRINUSE, no SO_REUSEADDR to share it) and is retried
start_bg squatter ip netns exec "$C" "$PYTHON" -c '
import signal, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 7105))
print("bound", flush=True)
signal.pause()'
wait_for 10 _has_line "$squatter_out" || bail "the squatter did not bind"
write_conf tcp
start_daemon "$CONF"
for ns in "$A" "$C"; do
	check "$ns: listeners up" wait_listeners "$ns" udp/127.0.0.1:7100 \
		"udp/[::1]:7100" udp/127.0.0.1:7101 udp/127.0.0.1:7103 127.0.0.1:7104
done
check_within 20 "the provisioned namespace is served" \
	wait_listening "$pre$u" udp/127.0.0.1:7102 1
squat_failed() { grep -q "ns $C: squat 127.0.0.1:7105: bind: Address already in use; retrying" "$DLOG"; }
check_within 10 "squat in C: bind refused by the tenant's socket, retried" squat_failed
check "squat in A: bound" _listening "$A" udp/127.0.0.1:7105
stop_pid "$squatter_pid"
check_within 10 "squat in C: bound once the tenant's socket is gone" \
	wait_listening "$C" udp/127.0.0.1:7105 1

# The client: sends the sizes given, all first, then reads as many
# answers; prints each answer's size (and its text when short).
cat >"$T/client.py" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.settimeout(5)
sizes = [int(x) for x in sys.argv[3:]]
for i, n in enumerate(sizes):
    s.sendto(bytes([65 + i % 26]) * n, (host, port))
got = []
for n in sizes:
    d = s.recv(70000)
    got.append("%d%s" % (len(d), ":" + chr(d[0]) if d else ""))
print(" ".join(got))
PY
client() { local ns=$1; shift; in_ns "$ns" "$PYTHON" "$T/client.py" "$@"; }

is "$(client "$A" 127.0.0.1 7100 1 512 1472 9000 65507)" "1:A 512:B 1472:C 9000:D 65507:E" \
	"udp: datagrams of 1 to 65,507 bytes come back whole"
is "$(client "$A" 127.0.0.1 7100 10 20 30 40 50 60 70 80)" \
	"10:A 20:B 30:C 40:D 50:E 60:F 70:G 80:H" \
	"udp: a burst of 8 sent at once: 8 datagrams, none merged, in order"
is "$(client "$A" ::1 7100 100 200)" "100:A 200:B" "udp: over an IPv6 listener"
is "$(client "$A" 127.0.0.1 7101 1 4000 60000)" "1:A 4000:B 60000:C" \
	"unix datagram upstream: each datagram back whole"

# source: namespace
who() { in_ns "$1" "$PYTHON" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b"who", ("127.0.0.1", 7102)); print(s.recv(100).decode())'; }
is "$(who "$pre$u")" "$h4|who" "source: namespace: the server sees the host end of the veth ($h4)"
is "$(who "$A")" "127.0.0.1|who" "source: namespace from a namespace not provisioned: the relay's address"

# connections_per_namespace: 3 flows at most; a 4th client ends the least
# recently used: clients 0, 1, 2, then 0 again, then 3 (ends 1's flow, not
# 0's, the oldest), then 0 once more (still its flow)
json() { "$NSRELAYCTL" -s "$ctl" stats --json; }
svc() {	# svc NS SERVICE EXPR: a number from the stats
	json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
s = [s for n in d["namespaces"] if n["name"] == sys.argv[1]
     for s in n["services"] if s["name"] == sys.argv[2]][0]
print(eval(sys.argv[3], {}, s))' "$1" "$2" "$3"
}
cat >"$T/four.py" <<'PY'
import socket, sys
socks = {}
for i in [int(x) for x in sys.argv[1].split(",")]:
    s = socks.setdefault(i, socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    s.settimeout(5)
    s.sendto(b"x%d" % i, ("127.0.0.1", 7103))
    assert s.recv(100) == b"x%d" % i
print("ok")
PY
is "$(in_ns "$A" "$PYTHON" "$T/four.py" 0,1,2,0,3,0)" ok "capped: clients 0 1 2 0 3 0, each answered"
is "$(svc "$A" capped "active")" 3 "capped: 3 flows live, the limit"
is "$(svc "$A" capped "(accepted, closed['no-resources'])")" "(4, 1)" \
	"capped: client 3 ended the least recently used flow (1's), 0 kept its own"
is "$(in_ns "$C" "$PYTHON" "$T/four.py" 0,1)" ok "capped: the other namespace has its own 3"
is "$(svc "$C" capped "closed['no-resources']")" 0 "capped: ... and lost none to the first"

# a reload turns flip from tcp into udp
is "$(in_ns "$A" "$PYTHON" "$PEER" echo --port 7104 --bytes 100 >/dev/null && echo ok)" ok \
	"flip: tcp before the reload"
write_conf udp
is "$("$NSRELAYCTL" -s "$ctl" reload)" "ok generation 2" "reload: flip becomes udp"
check_within 10 "flip: a UDP socket on 127.0.0.1:7104" wait_listening "$A" udp/127.0.0.1:7104 1
check "flip: the TCP listener is gone" sh -c "! ip netns exec '$A' ss -Hltn 'sport = :7104' | grep -q ."
is "$(client "$A" 127.0.0.1 7104 33)" "33:A" "flip: answered over udp"
is "$(client "$A" 127.0.0.1 7100 7)" "7:A" "echo: still answered after the reload"

# a namespace deleted while its flows live: they end with its listeners
is "$(client "$C" 127.0.0.1 7100 5)" "5:A" "C: a flow of echo before C goes"
ip netns del "$C"
c_gone() { ! json | grep -qF "\"name\":\"$C\""; }
check_within 20 "C deleted: the daemon forgets it, its flows ended" c_gone
check "... the daemon runs on" daemon_alive
is "$(client "$A" 127.0.0.1 7100 9)" "9:A" "... and A is still answered"

# stop: live flows (idle timeout 10 m) end at once, the grace is 60 s
cmp_ok "$(svc "$A" echo active)" -ge 1 "flows live before the stop"
t0=$(_now_us)
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 with flows live"
cmp_ok $(( ($(_now_us) - t0) / 1000000 )) -lt 10 "... without waiting for them (grace 60 s)"
done_testing
