#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/dns-bench.sh: a real resolver behind a udp service.  dnsmasq on
# the host, a client in a namespace, the same queries straight over a veth,
# through nsrelayd and through socat; figures side by side, with ratios.
# Prints figures; asserts nothing.
#
# Usage: t/bench/dns-bench.sh        (root: it makes a namespace and a veth)
# Env:   NSRELAYD (default $top_builddir/nsrelayd), NSRELAYCTL (its
#        nsrelayctl: the daemon's datagram stats after the runs),
#        DNSMASQ (/usr/sbin/dnsmasq), SOCAT (socat), DNS_SECS seconds of
#        each timed run (5), DNS_SOCKS source ports of the steady client
#        (8), DNS_WINDOW queries outstanding across them (32), DNS_PAR
#        lookups at once in the new-flow workload (4), DNS_COLS only these
#        columns (veth nsrelayd socat), KEEP_TMP=1 keeps the temporary
#        directory (configs, logs).  About 35 s with the defaults.
#
# dnsmasq: started by this script (--no-resolv --no-hosts, one host record
# db.internal -> 10.0.0.1, cache 1000) on 127.0.0.1 and the veth's host
# address, at a port free on the host (15353 up, below the ephemeral
# ports), and stopped by PID at exit; never the system's resolver.
#
# One namespace nsrdb-$$ (lo up, a veth with a /30 of 100.127.0.0/16, in
# 100.64.0.0/10: the host's end .1, the namespace's .2); the client runs in
# it, and every column gets the same client:
#   veth direct   the namespace's veth straight to dnsmasq on the host's
#                 end: the floor (routing, no relay)
#   nsrelayd      127.0.0.53:53 in the namespace -> nsrelayd -f, one
#                 "protocol: udp" service, its defaults (a connected UDP
#                 socket on the host per client address and port, flows
#                 idle for 30 s end) -> 127.0.0.1:port
#   socat         ip netns exec NS socat UDP4-RECVFROM:53,bind=127.0.0.54,fork
#                 UDP4-SENDTO:<veth host address>:port, as people relay UDP
#                 into a namespace (HAProxy's community edition and
#                 systemd-socket-proxyd do not relay UDP).  socat forks a
#                 child for every datagram it receives; the child sends it
#                 on, relays the answer and exits about 0.5 s later (-t)
# Workloads (dnsload.c here; every answer checked: id, 10.0.0.1):
#   A steady      DNS_SOCKS sockets (source ports) for the whole run,
#                 DNS_WINDOW queries outstanding, DNS_SECS s: queries/s,
#                 p50 and p99 µs, lost (no answer in 1 s)
#   B new flow    a new socket (so a new source port) for every query, as
#                 glibc's resolver does, DNS_PAR at once: queries/s, p99.
#                 Every query is a flow of nsrelayd's that lives 30 s: at
#                 thousands a second it reaches its share of descriptors
#                 (three quarters of its limit, RLIMIT_NOFILE) within the
#                 run, and the figures include what it does then (the
#                 stats line under the table: drops, flows ended)
# For the relay columns: its CPU per query in µs (utime+stime from
# /proc/PID/stat over the run, with the children: socat's exited children
# through the parent's cutime+cstime, nsrelayd's helper), its processes
# at the peak (sampled every 0.1 s) and its RSS after each run (VmRSS of
# the main process; for socat the parent's, and a child's beside).
#
# Exit status: 0; 1 if a measurement failed (its cell reads FAIL) or
# nsrelayd died; 77 if it cannot run here (not root, no netns, no gcc,
# dnsmasq or socat not installed).

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${NSRELAYD:-}" ]; then
	if [ -n "${top_builddir:-}" ]; then NSRELAYD=$top_builddir/nsrelayd
	else NSRELAYD=./nsrelayd; fi
fi
: "${NSRELAYCTL:=$(dirname "$NSRELAYD")/nsrelayctl}"
: "${DNSMASQ:=/usr/sbin/dnsmasq}"
: "${SOCAT:=socat}"
: "${DNS_SECS:=5}" "${DNS_SOCKS:=8}" "${DNS_WINDOW:=32}" "${DNS_PAR:=4}"
: "${DNS_COLS:=veth nsrelayd socat}"

NS=nsrdb-$$
VETH=vrdb$$			# the host's end; veth0 in $NS
NS_MADE=
BENCH=dns-bench
STOP_WAIT=3
. "$top_srcdir/t/bench/lib.sh"
declare -A PID R SKIP

bench_teardown() {
	[ -n "$NS_MADE" ] && ip netns del "$NS" 2>/dev/null
	ip link del "$VETH" 2>/dev/null
	return 0
}

for v in DNS_SECS DNS_SOCKS DNS_WINDOW DNS_PAR; do
	case ${!v} in ''|*[!0-9]*|0) die "$v must be a positive number" ;; esac
done
[ "$DNS_WINDOW" -ge "$DNS_SOCKS" ] || die "DNS_WINDOW must be at least DNS_SOCKS"
[ "$DNS_WINDOW" -le 4096 ] || die "DNS_WINDOW: at most 4096"
[ "$(id -u)" = 0 ] || skip_all "needs root (namespace, veth)"
[ -x "$NSRELAYD" ] || die "nsrelayd not found: NSRELAYD=$NSRELAYD"
command -v gcc >/dev/null || skip_all "gcc not installed"
command -v ip >/dev/null || skip_all "ip not installed"
command -v ss >/dev/null || skip_all "ss not installed"
[ -x "$DNSMASQ" ] || skip_all "dnsmasq not installed (apt-get install dnsmasq-base): no resolver to measure"
command -v "$SOCAT" >/dev/null ||
	skip_all "socat not installed (apt-get install socat): no peer to compare with"
[ -r "$top_srcdir/t/bench/dnsload.c" ] || die "no $top_srcdir/t/bench/dnsload.c"
bench_tmp 755

cp "$top_srcdir/t/bench/dnsload.c" "$T/dnsload.c" || die "cannot copy dnsload.c"
bench_cc dnsload
DL=$T/dnsload

# ------------------------------------------------------------ helpers

start_bg() {	# start_bg NAME CMD...: PID[NAME], output in $T/NAME.out/.err
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=("$!")
	PID[$name]=$!
}
forget() {	# PID: waited for, no longer ours to stop
	local i
	for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$1" ] && unset 'PIDS[i]'; done
}
stop_forget() { stop_pid "$1"; forget "$1"; }
# bg_wait OUT ERR CMD...: CMD in the background, waited for (a signal to
# this shell runs the exit trap at once, not after the command)
bg_wait() {
	local out=$1 err=$2 pid rc
	shift 2
	"$@" >"$out" 2>"$err" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid"
	rc=$?
	forget "$pid"
	return "$rc"
}
in_ns() { ip netns exec "$NS" "$@"; }
udp_listening_in_ns() {	# ADDR PORT: a UDP socket bound there in $NS
	in_ns ss -Hlun "sport = :$2" 2>/dev/null | grep -qF " $1:$2 "
}
answers() { "$@" >/dev/null 2>&1; }	# answers CMD...: a probe's exit status
HZ=$(getconf CLK_TCK)
kids_of() { cat "/proc/$1/task/"*/children 2>/dev/null; }
no_kids() { [ -z "$(kids_of "$1")" ]; }
cpu_ticks() {	# PID: utime+stime+cutime+cstime of it, utime+stime of its
		# live children (socat's exited children are in its cutime)
	local p t c
	t=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}')
	t=${t:-0}
	for p in $(kids_of "$1"); do
		c=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
		t=$((t + ${c:-0}))
	done
	echo "$t"
}
# sampler PID FILE: every 0.1 s, the most processes PID and its children
# have been so far, and the RSS (KiB) of one child then (the newest that is
# still there: socat's live for half a second), in FILE
sampler() {
	local pid=$1 out=$2 max=0 k n i r
	while [ -d "/proc/$pid" ]; do
		k=()
		read -r -a k <"/proc/$pid/task/$pid/children" 2>/dev/null
		n=$((1 + ${#k[@]}))
		if [ "$n" -gt "$max" ]; then
			max=$n
			r=
			for ((i = ${#k[@]} - 1; i >= 0 && ${#r} == 0; i--)); do
				r=$(rss_kib "${k[i]}")
			done
			echo "$max ${r:--}" >"$out"
		fi
		sleep 0.1
	done
}
failed() { R[$1,$2]=FAIL; FAILED=1; echo "$BENCH: $2: $1: $3" >&2; }

# ------------------------------------------------------------ namespace

ip netns add "$NS" 2>/dev/null || skip_all "ip netns add does not work here"
NS_MADE=1
in_ns ip link set lo up || die "cannot bring lo up in $NS"
# a /30 of 100.127.0.0/16 for this run, one no interface of the host has
off=$(( ($$ % 16384) * 4 ))
for ((i = 0; i < 64; i++)); do
	o=$(( (off + 4 * i) % 65536 ))
	VNET=100.127.$((o / 256))
	VHOST=$VNET.$((o % 256 + 1))
	VNS=$VNET.$((o % 256 + 2))
	ip -o -4 addr show | grep -qE " inet ($VHOST|$VNS)/" || break
done
ip link add "$VETH" type veth peer name veth0 netns "$NS" || die "cannot make the veth"
ip addr add "$VHOST/30" dev "$VETH" && ip link set "$VETH" up &&
ip -n "$NS" addr add "$VNS/30" dev veth0 && ip -n "$NS" link set veth0 up ||
	die "cannot address the veth"

# ------------------------------------------------------------ dnsmasq

port_free() { ! ss -Hluan "sport = :$1" 2>/dev/null | grep -q . &&
	      ! ss -Hltan "sport = :$1" 2>/dev/null | grep -q .; }
DP=$((15353 + $$ % 500))
UP=
for attempt in 1 2 3; do
	while ! port_free "$DP"; do DP=$((DP + 1)); done
	start_bg "dnsmasq$attempt" "$DNSMASQ" --conf-file=/dev/null --no-resolv \
		--no-hosts --keep-in-foreground --bind-interfaces \
		--listen-address="127.0.0.1,$VHOST" --port="$DP" \
		--host-record=db.internal,10.0.0.1 --cache-size=1000 \
		--user=root --pid-file=
	if wait_for 5 answers "$DL" probe 127.0.0.1 "$DP" &&
	   wait_for 5 answers in_ns "$DL" probe "$VHOST" "$DP"; then
		UP=${PID[dnsmasq$attempt]}
		break
	fi
	stop_forget "${PID[dnsmasq$attempt]}"
	DP=$((DP + 1))
done
[ -n "$UP" ] || die "dnsmasq did not answer: $(head -c 300 "$T"/dnsmasq*.err)"

# ------------------------------------------------------------ columns

COLS=("veth direct" nsrelayd socat)
for c in "${COLS[@]}"; do
	[[ " $DNS_COLS " == *" ${c%% *} "* ]] || SKIP[$c]="not in DNS_COLS"
done
# where the client sends, per column
declare -A TARGET=(["veth direct"]="$VHOST $DP" [nsrelayd]="127.0.0.53 53"
		   [socat]="127.0.0.54 53")

nsrelayd_conf() {	# FILE
	{
		printf 'user: nobody\n'
		printf 'control: { path: "%s" }\n' "$T/control.sock"
		printf 'namespaces:\n  all: false\n  names: [%s]\n' "$NS"
		printf 'services:\n  dns:\n    protocol: udp\n'
		printf '    listen: ["127.0.0.53:53"]\n'
		printf '    upstream: "127.0.0.1:%s"\n' "$DP"
	} >"$1"
	chmod 644 "$1"
}

start_relay() {	# COLUMN: its relay listening and answering, or 1
	local col=$1 addr port
	read -r addr port <<<"${TARGET[$col]}"
	case $col in
	nsrelayd)
		nsrelayd_conf "$T/nsrelayd.yaml"
		start_bg nsrelayd "$NSRELAYD" -f -c "$T/nsrelayd.yaml" ;;
	socat)
		start_bg socat ip netns exec "$NS" "$SOCAT" \
			"UDP4-RECVFROM:53,bind=127.0.0.54,fork" \
			"UDP4-SENDTO:$VHOST:$DP" ;;
	*) return 0 ;;
	esac
	wait_for 10 udp_listening_in_ns "$addr" "$port" &&
		wait_for 5 answers in_ns "$DL" probe "$addr" "$port"
}

# run_load COLUMN KEY CMD...: one workload of the column, its cells KEY_*
run_load() {
	local col=$1 key=$2 pp c0 c1 a l b late e qps p50 p99
	shift 2
	pp=${PID[$col]:-}
	if [ -n "$pp" ]; then
		wait_for 5 no_kids_but_helper "$col" "$pp"
		c0=$(cpu_ticks "$pp")
	fi
	if ! bg_wait "$T/$key.out" "$T/$key.err" in_ns "$DL" "$@"; then
		failed "${key}_qps" "$col" "$(head -c 300 "$T/$key.err")"
		return
	fi
	read -r a l b late e qps p50 p99 <"$T/$key.out"
	R[${key}_qps,$col]=$qps
	R[${key}_p50,$col]=$p50
	R[${key}_p99,$col]=$p99
	R[${key}_lost,$col]=$l
	R[${key}_bad,$col]=$((b + e))
	[ "$a" -gt 0 ] || failed "${key}_qps" "$col" "no answer: $(cat "$T/$key.out")"
	if [ -n "$pp" ]; then
		# socat's last children exit about 0.5 s after their datagram
		wait_for 5 no_kids_but_helper "$col" "$pp"
		c1=$(cpu_ticks "$pp")
		R[${key}_cpu,$col]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$a" \
			'BEGIN{ if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
		R[${key}_rss,$col]=$(rss_kib "$pp")
		R[${key}_fds,$col]=$(nfds "$pp")
	fi
}
no_kids_but_helper() {	# COLUMN PID: nsrelayd keeps its helper
	[ "$1" != socat ] || no_kids "$2"
}

ver_socat=$("$SOCAT" -V 2>/dev/null | awk '/socat version/{print $3; exit}')
ver_dnsmasq=$("$DNSMASQ" --version 2>/dev/null | awk 'NR==1{print $3}')
say "dns-bench: $(nproc) CPUs ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), dnsmasq $ver_dnsmasq, socat $ver_socat; load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "dns-bench: namespace $NS, veth $VHOST <-> $VNS, dnsmasq on 127.0.0.1 and $VHOST port $DP; each run $DNS_SECS s; A steady: $DNS_SOCKS source ports, $DNS_WINDOW queries outstanding; B new flow: a new socket per query, $DNS_PAR at once"

for col in "${COLS[@]}"; do
	[ -n "${SKIP[$col]:-}" ] && continue
	if ! start_relay "$col"; then
		SKIP[$col]="did not answer on ${TARGET[$col]}: $(head -c 200 "$T/$col.err")"
		[ "$col" = nsrelayd ] && FAILED=1
		echo "$BENCH: $col: ${SKIP[$col]}" >&2
		[ -n "${PID[$col]:-}" ] && stop_forget "${PID[$col]}"
		continue
	fi
	pp=${PID[$col]:-}
	sp=
	if [ -n "$pp" ]; then
		sampler "$pp" "$T/$col.peak" &
		sp=$!
		PIDS+=("$sp")
	fi
	read -r addr port <<<"${TARGET[$col]}"
	run_load "$col" a steady "$addr" "$port" "$DNS_SECS" "$DNS_SOCKS" "$DNS_WINDOW"
	run_load "$col" b newflow "$addr" "$port" "$DNS_SECS" "$DNS_PAR"
	[ -n "$sp" ] && stop_forget "$sp"
	[ -z "$pp" ] && continue
	read -r R[procs,$col] R[kidrss,$col] <"$T/$col.peak" 2>/dev/null
	if ! alive "$pp"; then
		FAILED=1
		echo "$BENCH: $col died: $(tail -3 "$T/$col.err")" >&2
	fi
	if [ "$col" = nsrelayd ] && [ -x "$NSRELAYCTL" ] &&
	   "$NSRELAYCTL" -s "$T/control.sock" -t 5 stats --json >"$T/stats.json" 2>/dev/null &&
	   command -v python3 >/dev/null; then
		NSR_STATS=$(python3 - "$T/stats.json" "$NS" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
for ns in d.get("namespaces", []):
    if ns.get("name") != sys.argv[2]:
        continue
    for s in ns.get("services", []):
        if s.get("name") != "dns":
            continue
        g = lambda *k: next((s[x] for x in k if x in s), "-")
        drops = s.get("drops") or {}
        dr = ", ".join("%s %s" % kv for kv in sorted(drops.items()) if kv[1]) or "none"
        closed = s.get("closed") or {}
        cl = ", ".join("%s %s" % kv for kv in sorted(closed.items()) if kv[1]) or "none"
        print("nsrelayd's stats for dns in %s: flows begun %s, live %s, datagrams in %s, out %s; drops: %s; flows ended: %s"
              % (sys.argv[2], g("accepted"), g("active"), g("datagrams_in", "datagrams-in"),
                 g("datagrams_out", "datagrams-out"), dr, cl))
PY
)
	fi
	stop_forget "$pp"
done

# ------------------------------------------------------------ the table

echo
ROW_W=34		# row(): t/bench/lib.sh
printf "%-${ROW_W}s" row
for c in "${COLS[@]}"; do printf ' %14s' "$c"; done
printf '\n'
row "A steady queries/s" a_qps
row "A p50 us" a_p50
row "A p99 us" a_p99
row "A lost (no answer in 1 s)" a_lost
row "A bad answers + errors" a_bad
row "A relay CPU us per query" a_cpu
row "A relay RSS KiB after" a_rss
row "B new-flow queries/s" b_qps
row "B p50 us" b_p50
row "B p99 us" b_p99
row "B lost (no answer in 1 s)" b_lost
row "B bad answers + errors" b_bad
row "B relay CPU us per query" b_cpu
row "B relay RSS KiB after" b_rss
row "relay fds after B" b_fds
row "relay processes at peak" procs
row "  RSS KiB of a child" kidrss
echo
rat() {	# KEY: nsrelayd / socat, or -
	ratio "$1" nsrelayd socat
}
say "nsrelayd vs socat: A queries/s x$(rat a_qps), p99 x$(rat a_p99), CPU/query x$(rat a_cpu); B queries/s x$(rat b_qps), p99 x$(rat b_p99), CPU/query x$(rat b_cpu)"
say "RSS rows: the main process's VmRSS: nsrelayd's without its privileged helper (the child"
say "  row), socat's parent, which forks a child for every datagram it receives: the child"
say "  relays it and the answer, and exits about 0.5 s later; the child row is the RSS of one."
say "  The CPU rows count every process (socat's children through the parent's cutime+cstime)."
say "  nsrelayd's fds after B: mostly its flows still live, each ends after 30 s without a datagram."
for c in "${COLS[@]}"; do
	[ -n "${SKIP[$c]:-}" ] && say "dns-bench: $c skipped: ${SKIP[$c]}"
done
[ -n "${NSR_STATS:-}" ] && say "$NSR_STATS"
if [ -s "$T/nsrelayd.err" ] && grep -qiE 'error|warn|crit|alert|drop' "$T/nsrelayd.err"; then
	say "nsrelayd logged $(grep -ciE 'error|warn|crit|alert|drop' "$T/nsrelayd.err") lines of warnings or errors (the first 3):"
	grep -iE 'error|warn|crit|alert|drop' "$T/nsrelayd.err" | head -3 | sed 's/^/  /'
fi
if [ -s "$T/socat.err" ]; then
	say "socat wrote $(wc -l <"$T/socat.err") lines on stderr; the first: $(head -1 "$T/socat.err")"
fi
say "dns-bench: load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$FAILED"
