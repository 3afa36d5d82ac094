#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/provision-bench.sh: N namespaces via nsprov vs ip(8): one
# `ip -batch` for all of them, and a loop of ip calls.
#
# Usage: t/bench/provision-bench.sh [N]    (default 1000, at most 2000; root)
# Env:   NSPROV (default $top_builddir/t/tools/nsprov), NSPROV_ARGS (extra
#        options, e.g. "-j 64"), NO_IP=1 (skip the ip loop, which takes
#        10-20 minutes for N=1000), NO_BATCH=1 (skip ip -batch).
#
# Same machine, same run, same starting state for each:
#   nsprov    provision N (indexes 11000.., namespaces nsb<i>, host ends
#             nsr<i>, peer veth0), provision again (no change), deprovision;
#   ip -batch one file for all N (indexes 13000.., namespaces and host ends
#             ipx<i>), per namespace: netns add; link add ... type veth peer
#             name veth0 netns NS (the peer made in the namespace, as
#             nsrelay does); addr add x2 (IPv6 nodad) and link set up on the
#             host end; then what ip can only do from inside the namespace,
#             `netns exec NS ip -batch F` with lo up, addr add x2, veth0 up,
#             route add default x2 (ip -batch takes no -n: one exec of ip per
#             namespace is as close as ip gets).  Removal: one batch of
#             netns del, until the kernel has taken every host end (as
#             nsprov's deprovision waits for it);
#   ip loop   for each of N (indexes 13000.., ipb<i>): ip netns add, ip link
#             add ... type veth peer ..., ip link set ... netns ..., ip addr
#             add (x4, IPv6 nodad), ip link set up (x3), ip route add default
#             (x2); then ip link del + ip netns del for each.
# ip -batch and the ip loop use the same indexes (so the same addresses),
# never at the same time: the batch's namespaces are gone before the loop.
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
: "${NO_BATCH:=}"
N=${1:-1000}
NB=11000			# nsprov indexes
IB=13000			# ip -batch and ip loop indexes
BENCH=provision-bench
. "$top_srcdir/t/bench/lib.sh"

[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$NSPROV" ] || die "nsprov not found: NSPROV=$NSPROV"
case $N in ''|*[!0-9]*) die "N must be a number" ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 2000 ] || die "N must be 1..2000"

ours_ns() {
	local f
	for f in /run/netns/nsb* /run/netns/ipb* /run/netns/ipx*; do
		[ -e "$f" ] && echo "${f##*/}"
	done | grep -E '^(nsb|ipb|ipx)[0-9]+$'
}
ours_links() {
	ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
		grep -E '^(nsr1[12][0-9]{3}|ipb1[34][0-9]{3}p?|ipx1[34][0-9]{3})$'
}

[ -z "$(ours_ns)$(ours_links)" ] ||
	die "names in our ranges exist already (nsb*, ipb*, ipx*, nsr11xxx): remove them first"
# from here on, what is in our ranges is ours
bench_teardown() {
	local i
	for i in $(ours_links); do ip link del "$i" 2>/dev/null; done
	for i in $(ours_ns); do ip netns del "$i" 2>/dev/null; done
}
bench_tmp 700

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

# ---------------------------------------------------------------- ip -batch
# wait_gone PREFIX: until none of our host ends named PREFIX<i> is left,
# polling every 50 ms, at most 300 s
wait_gone() {
	local i
	for ((i = 0; i < 6000; i++)); do
		ours_links | grep -q "^$1" || return 0
		sleep 0.05
	done
	return 1
}

b_p=- b_d=- b_t=-
if [ -z "$NO_BATCH" ]; then
	for ((k = 0; k < N; k++)); do
		i=$((IB + k)); ns=ipx$i
		cat <<EOF
netns add $ns
link add $ns type veth peer name veth0 netns $ns
addr add $(v4 $i 1)/30 dev $ns
addr add $(v6 $i 1)/64 dev $ns nodad
link set $ns up
netns exec $ns ip -batch $T/$ns
EOF
		cat >"$T/$ns" <<EOF
link set lo up
addr add $(v4 $i 2)/30 dev veth0
addr add $(v6 $i 2)/64 dev veth0 nodad
link set veth0 up
route add default via $(v4 $i 1)
route add default via $(v6 $i 1)
EOF
	done >"$T/up.batch"
	for ((k = 0; k < N; k++)); do
		echo "netns del ipx$((IB + k))"
	done >"$T/down.batch"
	tb0=$(now)
	ip -batch "$T/up.batch" >"$T/batch.out" 2>&1 ||
		die "ip -batch failed: $(tail -2 "$T/batch.out")"
	tb1=$(now)
	got=$(ours_ns | grep -c '^ipx')
	[ "$got" = "$N" ] || die "ip -batch made $got namespaces, not $N"
	ip -batch "$T/down.batch" >"$T/batch.out" 2>&1 ||
		die "ip -batch removal failed: $(tail -2 "$T/batch.out")"
	wait_gone ipx || die "ip -batch removal: host ends still there after 300 s"
	tb2=$(now)
	settle
	tb2s=$(now)
	b_p=$(secs "$tb0" "$tb1")s b_d=$(secs "$tb1" "$tb2")s
	b_t=$(secs "$tb2" "$tb2s")s
fi

# ---------------------------------------------------------------- ip loop
l_p=- l_d=- l_t=-
if [ -z "$NO_IP" ]; then
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
	l_p=$(secs "$t4" "$t5")s l_d=$(secs "$t5" "$t6")s
	l_t=$(secs "$t6" "$t6s")s
fi

# ratio A B: B / A for two cells "1.23s", or - when one is missing
ratio() {
	case "$1$2" in *-*) echo - ; return ;; esac
	awk -v a="${1%s}" -v b="${2%s}" 'BEGIN { printf "%.1fx", b / a }'
}
p_ns=$(secs "$t0" "$t1")s d_ns=$(secs "$t2" "$t3")s
printf '%-40s %9s %9s %9s %9s %9s\n' "" nsprov "ip -batch" "ip loop" \
	"batch/nsp" "loop/nsp"
printf '%-40s %9s %9s %9s %9s %9s\n' "provision $N namespaces" "$p_ns" "$b_p" \
	"$l_p" "$(ratio "$p_ns" "$b_p")" "$(ratio "$p_ns" "$l_p")"
printf '%-40s %9s %9s %9s\n' "provision again (no change)" \
	"$(secs "$t1" "$t2")s" - -
printf '%-40s %9s %9s %9s %9s %9s\n' "remove them all" "$d_ns" "$b_d" "$l_d" \
	"$(ratio "$d_ns" "$b_d")" "$(ratio "$d_ns" "$l_d")"
printf '%-40s %9s %9s %9s\n' "kernel teardown after (incl. 1 s idle)" \
	"$(secs "$t3" "$t3s")s" "$b_t" "$l_t"
