#!/bin/bash
# SPDX-License-Identifier: MIT
# The benchmarks cannot rot: each runs every row for about a second (make
# bench-smoke) and prints every row of its table, no cell FAIL.  The
# figures of such a run mean nothing and are not looked at.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

B=$top_srcdir/t/bench
export NSRELAYD top_srcdir top_builddir

# table_has FILE LABEL...: every LABEL begins a line of FILE's table
table_has() {
	local f=$1 l missing=
	shift
	for l in "$@"; do
		grep -q -- "^$l" "$f" || missing+=" [$l]"
	done
	[ -z "$missing" ] || { diag "rows missing:$missing"; return 1; }
}

bash "$B/peers-bench.sh" --smoke >"$T/peers.out" 2>"$T/peers.err"
rc=$?
[ "$rc" = 0 ] || diag "peers-bench exit $rc: $(tail -5 "$T/peers.err")"
ok "$([ "$rc" = 0 ]; echo $?)" "peers-bench --smoke runs to the end, no cell FAIL"
ok "$(table_has "$T/peers.out" "bulk Gbit/s" "bulk GB per proxy CPU-second" \
	"rate conns/s" "rate p50 us" "rate p99 us" "rate p99.9 us" \
	"ping-pong p50 us" "ping-pong p99 us" "idle KiB per connection"; echo $?)" \
	"peers-bench prints the bulk, rate, ping-pong and idle rows"
hdr=$(grep -m1 '^row ' "$T/peers.out")
like "$hdr" "direct +minimal +nsrelayd +nsrelayd-copy +haproxy +haproxy-splice +socket-proxyd" \
	"peers-bench has every column"
ok "$(awk '/^row /{t=1; next} t && /^[a-z]/ && $0 !~ /skipped/ {n++} END{exit !(n >= 9)}' \
	"$T/peers.out"; echo $?)" "peers-bench: the nsrelayd columns have figures"

BENCH_BYTES=$((32 << 20)) BENCH_CONNS=200 BENCH_IDLE=50 \
	bash "$B/relay-bench.sh" >"$T/relay.out" 2>"$T/relay.err"
rc=$?
[ "$rc" = 0 ] || diag "relay-bench exit $rc: $(tail -5 "$T/relay.err")"
ok "$([ "$rc" = 0 ]; echo $?)" "relay-bench (small sizes) runs to the end, no cell FAIL"
ok "$(table_has "$T/relay.out" "down " "up " "rate " "idle KiB per connection"; echo $?)" \
	"relay-bench prints its rows"

# scale-bench: namespaces nssc-<its PID>-*, which it must remove
bash "$B/scale-bench.sh" --smoke >"$T/scale.out" 2>"$T/scale.err" &
spid=$!
wait "$spid"
rc=$?
[ "$rc" = 0 ] || diag "scale-bench exit $rc: $(tail -5 "$T/scale.err")"
ok "$([ "$rc" = 0 ]; echo $?)" "scale-bench --smoke runs to the end, no cell FAIL"
ok "$(table_has "$T/scale.out" "20 namespaces x 4 listeners" \
	"  start s until all accept" "  RSS MiB listening" "  s until the probes have gone" \
	"  RSS MiB after 80 probes" \
	"  fds" "  RSS MiB with 0 namespaces" "  KiB per listener" \
	"10000 x 4 on paper: RSS MiB" "10000 x 4 on paper: fds"; echo $?)" "scale-bench prints every row"
like "$(grep -m1 '^row ' "$T/scale.out")" "nsrelayd +haproxy$" "scale-bench has both columns"
# the nsrelayd column (after a 40-character label) is figures in every row
# (a difference of 20 namespaces' RSS may be noise below 0); haproxy's may
# read "fails: ..." or "skipped"
awk '/^  / { n++; if (substr($0, 41, 11) ~ /^ *-?[0-9.]+$/) f++ }
	END { exit !(n == 7 && f == 7) }' "$T/scale.out"
rc=$?
[ "$rc" = 0 ] || diag "$(cat "$T/scale.out")"
ok "$rc" "scale-bench: the nsrelayd column has figures"
ok "$(compgen -G "/run/netns/nssc-$spid-*" >/dev/null; [ $? = 1 ]; echo $?)" \
	"scale-bench removed its namespaces"

if [ -x "$top_builddir/t/tools/nsprov" ]; then
	NSPROV=$top_builddir/t/tools/nsprov bash "$B/provision-bench.sh" 3 \
		>"$T/prov.out" 2>"$T/prov.err"
	rc=$?
	[ "$rc" = 0 ] || diag "provision-bench exit $rc: $(tail -5 "$T/prov.err")"
	ok "$([ "$rc" = 0 ]; echo $?)" "provision-bench with 3 namespaces runs to the end"
else
	pass "provision-bench skipped: t/tools/nsprov not built"
fi
# startup-bench and latency-bench: throwaway users nsrsb*/nsrlb* they add
# and remove themselves
SB_TMPFS=1 bash "$B/startup-bench.sh" 3 >"$T/startup.out" 2>"$T/startup.err"
rc=$?
[ "$rc" = 0 ] || diag "startup-bench exit $rc: $(tail -5 "$T/startup.err")"
ok "$([ "$rc" = 0 ]; echo $?)" "startup-bench with 3 users (own tmpfs) runs to the end, no cell FAIL"
awk '/^(start,|provision |deprovision |  \.\.\.)/ { n++; if ($(NF-1) ~ /^[0-9.]+$/) f++ }
	END { exit !(n == 9 && f == 9) }' "$T/startup.out"
rc=$?
[ "$rc" = 0 ] || diag "$(cat "$T/startup.out")"
ok "$rc" "startup-bench: every row has figures"
LAT_QUIET_S=1 bash "$B/latency-bench.sh" 3 >"$T/latency.out" 2>"$T/latency.err"
rc=$?
[ "$rc" = 0 ] || diag "latency-bench exit $rc: $(tail -5 "$T/latency.err")"
ok "$([ "$rc" = 0 ]; echo $?)" "latency-bench with 3 users runs to the end"
ok "$(table_has "$T/latency.out" "phase seconds" "requests per second" \
	"round trips" "p50 us" "p99 us" "p99.9 us" "max us"; echo $?)" \
	"latency-bench prints its rows"
DNS_SECS=1 bash "$B/dns-bench.sh" >"$T/dns.out" 2>"$T/dns.err"
rc=$?
[ "$rc" = 0 ] || diag "dns-bench exit $rc: $(tail -5 "$T/dns.err")"
ok "$([ "$rc" = 0 ]; echo $?)" "dns-bench for 1 s a run runs to the end, no cell FAIL"
ok "$(table_has "$T/dns.out" "A steady queries/s" "A p99 us" \
	"A relay CPU us per query" "B new-flow queries/s" "B p99 us" \
	"B lost" "relay fds after B"; echo $?)" "dns-bench prints its rows"
done_testing
