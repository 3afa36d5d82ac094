#!/bin/bash
# SPDX-License-Identifier: MIT
# Provisioning by the daemon: namespaces of the config's users are created
# and wired (names, addresses, prefixes, routes, link states exactly as
# specified), served, reachable over their veth both ways; a restart changes
# nothing (same interfaces, a connection across the veth survives); the
# control socket provisions concurrently and repeatedly, refuses unknown
# users; conflicts fail only their namespace; the hosts file follows; a lost
# host link, or lost link events, are repaired;
# deprovisioning removes exactly what was created.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v socat >/dev/null || skip_all "socat not found"

pool_claim B UB			# this run's indexes: B .. B+3
pre="nsrc-$$-"
ctl=$T/control.sock
hosts=$T/hosts
v4() { echo "100.$((64 + $1 / 256)).$(($1 % 256)).$2"; }
v6() { printf 'fd75:6272:7370:%x::%s' "$1" "$2"; }
# a user of this run's own, provisioned on request: index = uid - uid_base
# falls in this run's range, so that concurrent runs never share a veth
# name or an address
lpu=nsrc$$
uid_lp=$((UB + B + 3))
for u in daemon bin sync games "$lpu"; do netns_adopt "$pre$u"; done
for i in 0 1 2 3; do link_adopt "nc$((B + i))"; done
for u in daemon bin; do getent passwd "$u" >/dev/null || skip_all "no user $u"; done
command -v useradd >/dev/null || skip_all "useradd not found"
! getent passwd "$uid_lp" >/dev/null || skip_all "uid $uid_lp is taken"
useradd -r -M -N -u "$uid_lp" -d /nonexistent -s /usr/sbin/nologin "$lpu" ||
	bail "useradd $lpu failed"
test_cleanup() { userdel "$lpu" 2>/dev/null; }

# what this run may create: host ends nc<B..B+3>, namespaces $pre*; other
# tests may create and remove their own links and namespaces meanwhile
ours() { grep -E "^(nc($B|$((B + 1))|$((B + 2))|$((B + 3)))|ncx$$|$pre.*)\$" || true; }
links_before=$(ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' | ours | sort)
ns_before=$(ip netns list | awk '{print $1}' | ours | sort)

# a stale host-side veth already holds the name sync's host end would get
ip link add "nc$((B + 2))" type veth peer name "ncx$$" || bail "ip link add"
link_adopt "ncx$$"

start_server echo echo
conf_begin "$T/control.yaml" --all "$pre*"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000 "[::1]:7000"
conf_text <<EOF
provision:
  users:
    - { name: daemon, index: $B }
    - { name: bin, index: $((B + 1)) }
    - { name: sync, index: $((B + 2)) }
    - { name: games, index: 20000 }
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "nc%i"
  control: $ctl
  hosts_file: $hosts
  domain: test.example
EOF
daemon_up -d "nsrelayd started" "$CONF"
provisioned() { grep -q "ns $pre$1: provisioned for $1" "$DLOG"; }
check_within 20 "daemon's namespace provisioned at start" provisioned daemon
check_within 20 "bin's namespace provisioned at start" provisioned bin

# --- exactly as specified
spec_ok() {	# spec_ok USER INDEX
	local ns=$pre$1 i=$2
	"$PYTHON" - "$ns" "nc$i" "$(v4 "$i" 1)" "$(v4 "$i" 2)" \
		"$(v6 "$i" 1)" "$(v6 "$i" 2)" <<'PY'
import json, subprocess, sys
ns, hif, h4, n4, h6, n6 = sys.argv[1:]
def ipj(*a):
    return json.loads(subprocess.check_output(["ip", "-j"] + list(a)) or b"[]")
bad = []
def want(c, what):
    if not c: bad.append(what)
links = {l["ifname"]: l for l in ipj("-n", ns, "link")}
want(set(links) == {"lo", "veth0"}, "links in ns: %s" % sorted(links))
want("UP" in links.get("lo", {}).get("flags", []), "lo up")
want("UP" in links.get("veth0", {}).get("flags", []), "veth0 up")
host = ipj("link", "show", hif)
want(host and "UP" in host[0]["flags"], "host end up")
want(host and host[0].get("link_type") == "ether", "host end ether")
def addrs(*a):
    out = set()
    for l in ipj(*a):
        for ai in l.get("addr_info", []):
            if ai.get("scope") == "global":
                out.add("%s/%d" % (ai["local"], ai["prefixlen"]))
    return out
want(addrs("-n", ns, "addr", "show", "veth0") == {n4 + "/30", n6 + "/64"},
     "ns addresses %s" % addrs("-n", ns, "addr", "show", "veth0"))
want(addrs("addr", "show", hif) == {h4 + "/30", h6 + "/64"},
     "host addresses %s" % addrs("addr", "show", hif))
r4 = [r for r in ipj("-n", ns, "route") if r["dst"] == "default"]
want(len(r4) == 1 and r4[0].get("gateway") == h4 and r4[0].get("dev") == "veth0",
     "IPv4 default route %s" % r4)
r6 = [r for r in ipj("-n", ns, "-6", "route") if r["dst"] == "default"]
want(len(r6) == 1 and r6[0].get("gateway") == h6 and r6[0].get("dev") == "veth0",
     "IPv6 default route %s" % r6)
if bad:
    sys.exit("; ".join(bad))
PY
}
check "daemon: links, addresses, prefixes, routes, states as specified" spec_ok daemon $B
check "bin: links, addresses, prefixes, routes, states as specified" spec_ok bin $((B + 1))
check_within 10 "the proxied service inside daemon's namespace" \
	peer_in "${pre}daemon" echo --port 7000 --bytes 64KiB --timeout 2
check_within 10 "the proxied service inside bin's namespace (IPv6)" \
	peer_in "${pre}bin" echo --host ::1 --port 7000 --bytes 64KiB --timeout 2

# --- over the veth, both ways, IPv4 and IPv6
start_server h4 echo --host "$(v4 $B 1)"
start_server h6 echo --host "$(v6 $B 1)"
start_server n4 -n "${pre}daemon" echo --host "$(v4 $B 2)"
start_server n6 -n "${pre}daemon" echo --host "$(v6 $B 2)"
check "namespace -> host over the veth (IPv4)" \
	peer_in "${pre}daemon" echo --host "$(v4 $B 1)" --port "$h4_port"
check "namespace -> host over the veth (IPv6)" \
	peer_in "${pre}daemon" echo --host "$(v6 $B 1)" --port "$h6_port"
check "host -> namespace over the veth (IPv4)" \
	peer echo --host "$(v4 $B 2)" --port "$n4_port"
check "host -> namespace over the veth (IPv6)" \
	peer echo --host "$(v6 $B 2)" --port "$n6_port"

# --- conflicts: only their namespace fails
stale_logged() { grep -q "ns ${pre}sync: provisioning for sync failed: .*nc$((B + 2))" "$DLOG"; }
check_within 10 "a stale host veth with the target name: a clear error" stale_logged
range_logged() { grep -qiE "provisioning for games: .*(pool|range)" "$DLOG"; }
check_within 10 "an index outside the pool: a clear error" range_logged
is "$(ip -j link show "ncx$$" | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')" 1 \
	"the stale veth was left alone"

# --- hosts file
check "hosts file maps daemon.test.example to its IPv4 address" \
	grep -qx "$(v4 $B 2) daemon.test.example" "$hosts"
check "hosts file maps bin.test.example to its IPv6 address" \
	grep -qx "$(v6 $((B + 1)) 2) bin.test.example" "$hosts"

# --- a provisioned namespace that loses its host link is made whole again
ip link del "nc$B"
restored() { ip link show "nc$2" >/dev/null 2>&1 && spec_ok "$1" "$2"; }
check_within 10 "host veth deleted: the namespace is provisioned again" \
	restored daemon $B
check_within 10 "... and served again" \
	peer_in "${pre}daemon" echo --port 7000 --bytes 4KiB --timeout 2

# --- link events lost to a monitor overrun: every namespace is reconciled.
# The monitor's receive buffer is megabytes: flap a link while the daemon
# is stopped, in rounds, until its buffer overruns (at most 5 rounds).
ip link add "nf$$a" type veth peer name "nf$$b" || bail "ip link add"
link_adopt "nf$$a"
overran() { grep -q "link monitor overran" "$DLOG"; }
for round in 1 2 3 4 5; do
	kill -STOP "$DPID"
	ip link del "nc$((B + 1))" 2>/dev/null	# an event that may be lost
	for i in $(seq 3000); do echo "link set nf$$a up"; echo "link set nf$$a down"; done |
		ip -batch - || diag "link flood failed"
	kill -CONT "$DPID"
	wait_for 3 overran && break
done
diag "link flood rounds: $round"
check_within 20 "the link monitor's overrun is noticed" overran
check_within 20 "... and bin's lost veth is back" restored bin $((B + 1))
ip link del "nf$$a"

# --- restart: nothing re-created, a connection across the veth survives
idx() { ip -j link show "$1" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])'; }
nidx() { ip -n "$1" -j link show veth0 | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])'; }
before="$(idx nc$B) $(nidx "${pre}daemon") $(idx nc$((B + 1)))"
start_bg chat ip netns exec "${pre}daemon" "$PYTHON" "$PEER" chatter \
	--host "$(v4 $B 1)" --port "$h4_port" --count 50 --interval 0.1
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
start_daemon "$CONF"
n_prov() { [ "$(log_count "ns $pre(daemon|bin): provisioned for")" -ge 2 ]; }
check_within 20 "restarted: both namespaces ready again" n_prov
after="$(idx nc$B) $(nidx "${pre}daemon") $(idx nc$((B + 1)))"
is "$after" "$before" "restart re-created nothing (same interface indexes)"
check_bg 15 chat "a connection across the veth survived the restart"

# --- the control socket
ask() { echo "$1" | timeout 30 socat -t 30 - "UNIX-CONNECT:$ctl"; }
ask "provision $lpu" >"$T/a1" & a1=$!
ask "provision $lpu" >"$T/a2" & a2=$!
wait $a1 $a2
is "$(cat "$T/a1") / $(cat "$T/a2")" "ok $lpu $pre$lpu / ok $lpu $pre$lpu" \
	"two concurrent provision calls: both told success"
is "$(ip netns list | awk '{print $1}' | grep -cx "$pre$lpu")" 1 \
	"... and one namespace"
check "$lpu: as specified (index = uid - uid_base)" spec_ok "$lpu" $((B + 3))
check "its listener is open when ok is answered" \
	peer_in "$pre$lpu" echo --port 7000 --bytes 4KiB --timeout 2
is "$(ask "provision $lpu")" "ok $lpu $pre$lpu" "a repeated call is a no-op success"
like "$(ask "provision nosuchuser$$")" '^error: no such user' \
	"an unknown user: a clear error"
like "$(ask "frobnicate")" '^error: unknown command' "an unknown command: an error"
check "the daemon still serves after the errors" \
	peer_in "${pre}daemon" echo --port 7000 --bytes 4KiB
is "$(stat -c %a "$ctl")" 600 "the control socket is root's only (0600)"

# --- deprovision removes exactly what was created
stop_pid "$h4_pid"; stop_pid "$h6_pid"; stop_pid "$n4_pid"; stop_pid "$n6_pid"
for u in daemon bin "$lpu"; do
	is "$(ask "deprovision $u")" "ok $u $pre$u" "deprovision $u"
done
check "the namespaces' files are gone when ok is answered" \
	bash -c "! ip netns list | grep -qwE '$pre(daemon|bin|$lpu)'"
our_links() { ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' | ours | sort | tr '\n' ' '; }
only_stale() { [ "$(our_links)" = "nc$((B + 2)) ncx$$ " ]; }
# the kernel takes the veths with their namespaces, in a batch, after ok
check_within 10 "only the stale veth (not ours to remove) is left" only_stale
ip link del "nc$((B + 2))"
links_after=$(ip -o link | awk -F': ' '{print $2}' | sed 's/@.*//' | ours | sort)
ns_after=$(ip netns list | awk '{print $1}' | ours | sort)
is "$links_after" "$links_before" "host links are exactly as before"
is "$ns_after" "$ns_before" "namespaces are exactly as before"
check "hosts file no longer names daemon" \
	bash -c "! grep -q daemon.test.example '$hosts'"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
