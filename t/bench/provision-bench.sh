#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/provision-bench.sh: N namespaces via nsprov vs a loop of ip(8) calls.
#
# Usage: t/bench/provision-bench.sh [N]    (default 1000, at most 2000; root)
# Env:   NSPROV (default $top_builddir/t/tools/nsprov), NSPROV_ARGS (extra
#        options, e.g. "-j 64"), NO_IP=1 (nsprov only: skip the ip loop,
#        which takes 10-20 minutes for N=1000).
#
# Same machine, same run, same starting state for both:
#   nsprov   provision N (indexes 11000.., namespaces nsb<i>, host ends
#            nsr<i>, peer veth0), provision again (no change), deprovision;
#   ip loop  for each of N (indexes 13000.., ipb<i>): ip netns add, ip link
#            add ... type veth peer ..., ip link set ... netns ..., ip addr
#            add (x4, IPv6 nodad), ip link set up (x3), ip route add default
#            (x2); then ip link del + ip netns del for each.
# Namespaces die asynchronously in the kernel, holding the RTNL lock while
# they do; before and between phases the script waits until the count of
# live namespaces (net_namespace slab) stops falling, so that one phase does
# not pay for the last.
# Everything it made is removed by an EXIT trap.

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${NSPROV:=$top_builddir/t/tools/nsprov}"
: "${NSPROV_ARGS:=}"
: "${NO_IP:=}"
N=${1:-1000}
NB=11000			# nsprov indexes
IB=13000			# ip loop indexes

die() { echo "provision-bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$NSPROV" ] || die "nsprov not found: NSPROV=$NSPROV"
case $N in ''|*[!0-9]*) die "N must be a number" ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 2000 ] || die "N must be 1..2000"

ours_ns() {
	local f
	for f in /run/netns/nsb* /run/netns/ipb*; do
		[ -e "$f" ] && echo "${f##*/}"
	done | grep -E '^(nsb|ipb)[0-9]+$'
}
ours_links() {
	ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' |
		grep -E '^(nsr1[12][0-9]{3}|ipb1[34][0-9]{3}p?)$'
}

cleanup() {
	local rc=$? i
	trap - EXIT HUP INT TERM
	for i in $(ours_links); do ip link del "$i" 2>/dev/null; done
	for i in $(ours_ns); do ip netns del "$i" 2>/dev/null; done
	exit "$rc"
}

[ -z "$(ours_ns)$(ours_links)" ] ||
	die "names in our ranges exist already (nsb*, ipb*, nsr11xxx): remove them first"
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

netns_count() { awk '/^net_namespace /{print $2}' /proc/slabinfo 2>/dev/null; }

# settle: wait until the kernel has destroyed the namespaces we dropped: the
# count of live network namespaces has not gone down for 1 s (others may be
# making namespaces meanwhile, so it need not come back to where it was).
# Polls every 100 ms, at most 300 s.
settle() {
	local i last cur still=0
	last=$(netns_count)
	[ -n "$last" ] || return 0
	for i in $(seq 3000); do
		sleep 0.1
		cur=$(netns_count)
		if [ "$cur" -lt "$last" ]; then
			still=0
		else
			still=$((still + 1))
			[ "$still" -ge 10 ] && return 0
		fi
		last=$cur
	done
	echo "warning: namespaces still being destroyed after 300 s" >&2
}

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b / a }'; }

# the addresses of index i, as prov_spec_derive() makes them
v4() { echo "100.$((64 + $1 / 256)).$(($1 % 256)).$2"; }
v6() { printf 'fd75:6272:7370:%x::%s' "$1" "$2"; }

args=()
for ((k = 0; k < N; k++)); do
	args+=("nsb$((NB + k))" "$((NB + k))")
done

echo "provision-bench: N=$N, $(nproc) CPUs, kernel $(uname -r), $(ip -V)"
settle

# ---------------------------------------------------------------- nsprov
t0=$(now)
# shellcheck disable=SC2086
"$NSPROV" -q $NSPROV_ARGS provision "${args[@]}" || die "nsprov provision failed"
t1=$(now)
got=$(ours_ns | grep -c '^nsb')
[ "$got" = "$N" ] || die "nsprov made $got namespaces, not $N"
# shellcheck disable=SC2086
"$NSPROV" -q $NSPROV_ARGS provision "${args[@]}" || die "nsprov re-provision failed"
t2=$(now)
# shellcheck disable=SC2086
"$NSPROV" -q $NSPROV_ARGS deprovision "${args[@]}" || die "nsprov deprovision failed"
t3=$(now)
[ -z "$(ours_ns)$(ours_links)" ] || die "nsprov deprovision left something"
settle
t3s=$(now)

if [ -n "$NO_IP" ]; then
	printf '%-40s %9s\n' "" nsprov
	printf '%-40s %8ss\n' "provision $N namespaces" "$(secs "$t0" "$t1")"
	printf '%-40s %8ss\n' "provision again (no change)" "$(secs "$t1" "$t2")"
	printf '%-40s %8ss\n' "remove them all" "$(secs "$t2" "$t3")"
	printf '%-40s %8ss\n' "kernel teardown after (incl. 1 s idle)" \
		"$(secs "$t3" "$t3s")"
	exit 0
fi

# ---------------------------------------------------------------- ip loop
t4=$(now)
for ((k = 0; k < N; k++)); do
	i=$((IB + k)); ns=ipb$i; h=ipb$i; p=ipb${i}p
	ip netns add "$ns" &&
	ip link add "$h" type veth peer name "$p" &&
	ip link set "$p" netns "$ns" &&
	ip addr add "$(v4 $i 1)/30" dev "$h" &&
	ip addr add "$(v6 $i 1)/64" dev "$h" nodad &&
	ip link set "$h" up &&
	ip -n "$ns" link set lo up &&
	ip -n "$ns" addr add "$(v4 $i 2)/30" dev "$p" &&
	ip -n "$ns" addr add "$(v6 $i 2)/64" dev "$p" nodad &&
	ip -n "$ns" link set "$p" up &&
	ip -n "$ns" route add default via "$(v4 $i 1)" &&
	ip -n "$ns" -6 route add default via "$(v6 $i 1)" ||
		die "ip loop failed at $ns"
done
t5=$(now)
got=$(ours_ns | grep -c '^ipb')
[ "$got" = "$N" ] || die "the ip loop made $got namespaces, not $N"
for ((k = 0; k < N; k++)); do
	i=$((IB + k))
	ip link del "ipb$i" && ip netns del "ipb$i" || die "ip removal failed at ipb$i"
done
t6=$(now)
settle
t6s=$(now)

p_ns=$(secs "$t0" "$t1"); p_ip=$(secs "$t4" "$t5")
d_ns=$(secs "$t2" "$t3"); d_ip=$(secs "$t5" "$t6")
printf '%-40s %9s %9s %9s\n' "" nsprov "ip loop" "ip/nsprov"
printf '%-40s %8ss %8ss %8sx\n' "provision $N namespaces" "$p_ns" "$p_ip" \
	"$(ratio "$p_ns" "$p_ip")"
printf '%-40s %8ss %9s\n' "provision again (no change)" "$(secs "$t1" "$t2")" "-"
printf '%-40s %8ss %8ss %8sx\n' "remove them all" "$d_ns" "$d_ip" \
	"$(ratio "$d_ns" "$d_ip")"
printf '%-40s %8ss %8ss\n' "kernel teardown after (incl. 1 s idle)" "$(secs "$t3" "$t3s")" \
	"$(secs "$t6" "$t6s")"
