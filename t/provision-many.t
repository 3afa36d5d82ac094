#!/bin/bash
# SPDX-License-Identifier: MIT
# t/provision-many.t: many namespaces in one run of the provisioner, with
# every job in flight at once and with a parallel limit of 2.
#
# Many jobs run at once: their namespaces are created on the provisioner's
# worker, each job gets the descriptor of its own namespace back, and the
# loop wires the veth pair into that descriptor while the other jobs'
# requests are in flight on the same sockets.  A mix-up anywhere (a
# descriptor, a placeholder, a completion or an answer given to the wrong
# job) shows as a namespace that is not distinct, or whose veth0 is not
# paired with its own host end, or carries another index's address.  So,
# for 48 namespaces made by one nsprov call (-j 48: all in flight), then 12
# more with -j 2 (the limit holds jobs back; they still all finish): each
# file holds its own network namespace (distinct nsfs inodes), veth0 inside
# has exactly the index's addresses and its peer index is the host end's
# ifindex, the host end has the host addresses, both default routes are
# there; provisioning all 60 again changes nothing; then deprovision leaves
# no file and no host end behind.  Needs root.
#
# Driver: $NSPROV if set, else $top_builddir/t/tools/nsprov.  Indexes: a
# block from pool_claim (t/lib.sh); names nsrm<pid>-<k>.  Everything created
# is removed by an EXIT trap.

. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
: "${NSPROV:=$top_builddir/t/tools/nsprov}"

P=nsrm$$-			# prefix of every namespace we make
pool_claim B			# indexes B..B+59 (of 64)
N1=48 N2=12

host_links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'; }

test_cleanup() {	# called by lib.sh at exit: whatever nsprov made
	local i
	for i in /run/netns/"$P"*; do
		[ -e "$i" ] && [ ! -L "$i" ] && ip netns del "${i##*/}" 2>/dev/null
	done
	for ((i = B; i < B + N1 + N2; i++)); do
		ip link del "nsr$i" 2>/dev/null
	done
}

tap_init
[ -x "$NSPROV" ] || bail "nsprov not found: NSPROV=$NSPROV"

# args FIRST COUNT: NAME INDEX pairs for indexes B+FIRST..
args() {
	local k
	for ((k = $1; k < $1 + $2; k++)); do
		printf '%s%d %d ' "$P" "$k" $((B + k))
	done
}

# check.py FIRST COUNT PREFIX B: every namespace of the range as derived
# from its index; prints one line per problem, nothing when all is right
cat >"$T/check.py" <<'EOF'
import json, os, subprocess, sys
first, count, prefix, base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def ipj(*args):
    out = subprocess.run(["ip", "-j"] + list(args), capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else None

def globals_of(link):
    return sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])
                  if a.get("scope") == "global")

inodes = {}
for k in range(first, first + count):
    i = base + k
    ns, host = "%s%d" % (prefix, k), "nsr%d" % i
    v4 = "100.%d.%d" % (64 + i // 256, i % 256)
    v6 = "fd75:6272:7370:%x" % i
    try:
        st = os.stat("/run/netns/" + ns)
    except OSError as e:
        print("%s: %s" % (ns, e)); continue
    if st.st_ino in inodes:
        print("%s: the same namespace as %s" % (ns, inodes[st.st_ino]))
    inodes[st.st_ino] = ns
    h = ipj("addr", "show", "dev", host)
    if not h:
        print("%s: no host end %s" % (ns, host)); continue
    want = sorted(["%s.1/30" % v4, "%s::1/64" % v6])
    if globals_of(h[0]) != want:
        print("%s: host end %s has %s, not %s" % (ns, host, globals_of(h[0]), want))
    p = ipj("-n", ns, "addr", "show", "dev", "veth0")
    if not p:
        print("%s: no veth0 inside" % ns); continue
    want = sorted(["%s.2/30" % v4, "%s::2/64" % v6])
    if globals_of(p[0]) != want:
        print("%s: veth0 has %s, not %s" % (ns, globals_of(p[0]), want))
    if p[0].get("link_index") != h[0]["ifindex"]:
        print("%s: veth0's peer is ifindex %s, not %s (%s)" %
              (ns, p[0].get("link_index"), h[0]["ifindex"], host))
    for fam, gw in (("-4", v4 + ".1"), ("-6", v6 + "::1")):
        r = ipj("-n", ns, fam, "route", "show", "default") or []
        if [(x.get("gateway"), x.get("dev")) for x in r] != [(gw, "veth0")]:
            print("%s: default routes %s: %s" % (ns, fam, r))
EOF

# 1. All of them in flight at once.
out=$("$NSPROV" -j "$N1" provision $(args 0 "$N1"))
st=$?
is "$st $(grep -c ' ok$' <<<"$out")" "0 $N1" \
	"$N1 namespaces provisioned at once (-j $N1), every one ok"
bad=$("$PYTHON" "$T/check.py" 0 "$N1" "$P" "$B" 2>&1)
is "$bad" "" "each of the $N1: its own namespace, veth0 paired with its own host end, its index's addresses and routes"
[ -z "$bad" ] || diag "$(head -10 <<<"$bad")"

# 2. A parallel limit of 2: the others wait their turn, then all finish.
out=$("$NSPROV" -j 2 provision $(args "$N1" "$N2"))
st=$?
is "$st $(grep -c ' ok$' <<<"$out")" "0 $N2" \
	"$N2 more with at most 2 at once (-j 2), every one ok"
bad=$("$PYTHON" "$T/check.py" "$N1" "$N2" "$P" "$B" 2>&1)
is "$bad" "" "each of the $N2 as specified"
[ -z "$bad" ] || diag "$(head -10 <<<"$bad")"

# 3. Again, all of them: nothing to do, all ok, nothing changed.
before=$(for ((i = B; i < B + N1 + N2; i++)); do cat "/sys/class/net/nsr$i/ifindex"; done | tr '\n' ' ')
out=$("$NSPROV" -j 64 provision $(args 0 $((N1 + N2))))
st=$?
after=$(for ((i = B; i < B + N1 + N2; i++)); do cat "/sys/class/net/nsr$i/ifindex"; done | tr '\n' ' ')
is "$st $(grep -c ' ok$' <<<"$out")" "0 $((N1 + N2))" "provisioning all $((N1 + N2)) again: every one ok"
is "$after" "$before" "no host end was re-created"

# 4. Deprovision everything at once: nothing of ours is left.
out=$("$NSPROV" -j 64 deprovision $(args 0 $((N1 + N2))))
st=$?
is "$st $(grep -c ' ok$' <<<"$out")" "0 $((N1 + N2))" "deprovision all $((N1 + N2)), every one ok"
left=$(compgen -G "/run/netns/$P*" | wc -l)
ends=$(host_links | grep -cE "^nsr($(seq -s'|' "$B" $((B + N1 + N2 - 1))))\$")
is "$left $ends" "0 0" "no namespace file and no host end left"

done_testing
