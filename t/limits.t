#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-namespace limits an admin sets (off by default: namespaces then
# share fairly, t/fairshare.t): one namespace's flood must not starve
# another's, and each limit holds to its number.
#
# Three namespaces served by one nsrelayd: NA and NC flood, NB is an
# ordinary user doing request/response on a new connection each time, to an
# upstream of its own (7001), so that what is measured is the relay, not an
# upstream the floods share.  With limits set to 256 live connections,
# 200 new a second with bursts of 400, per namespace (the defaults before
# fair sharing replaced them):
#  (a) idle flood: NA opens 600 idle connections to an echo upstream (7000)
#      and is held at 256 live (counted on the upstream side), the log
#      saying why with the count; NB's 50 round trips all succeed meanwhile,
#      each within 2 s; once the flood is gone NA is served again;
#  (c) memory: NA's 256 connections send 640 KiB each to a unix upstream
#      that never reads (7002), so the relay buffers ~300 KiB a connection;
#      NB opens a few connections on top (their memory lies above the
#      flood's in the heap: free() alone cannot give the flood's back); once
#      the flood has gone, VmRSS is back within 10 MiB of its value before
#      the floods within 5 s (the trim after a burst);
#  (b) rate flood: NC connects and closes as fast as it can for 3 s; the
#      daemon accepts at most the bucket's burst (400) and its rate times
#      the time gone by, NB's round trips all succeed, each within 2 s, and
#      the rate limit is logged for NC only (NC, not NA, so that (a)'s line
#      does not use up the one line per 10 s per namespace).
# With the limits at 0 (none), (a) and (b) fail: 600 live connections,
# some 12,000 accepts in 3.5 s, no log line; without malloc_trim, (c)
# fails.  NB's latency is shown, not bounded: without the limits, its p50
# stays a few ms and 2 or 3 of its 100 round trips wait for a SYN to be
# sent again (1 s), while under ASan the slower daemon throttles the flood
# itself (p99 0.35 s); a loaded machine alone has made a p99 of 0.2 s.
# The clients and the parking upstream are $T/flood.py (written below).
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

# limits an admin sets (there are none by default: t/fairshare.t checks
# what namespaces get then)
LIMIT=256 RATE=200 BURST=400
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
cat >"$T/flood.py" <<'EOF'
# flood.py MODE PORT [ARGS]: the limit test's clients (run in a namespace).
#   hold N [BYTES]  open N connections (a 4 KiB receive buffer), send BYTES
#                   on each (as far as they take them within 10 s), print
#                   "connected C sent S", hold until SIGTERM, then close
#   churn SECS      connect and close as fast as possible for SECS; print
#                   "connects C failed F"
#   rtt N [GAP]     N round trips of 64 bytes, each on a new connection,
#                   GAP seconds apart; print "n N failed F p50 A p99 B max C
#                   over500 K" (milliseconds; K round trips over 500 ms);
#                   exit 1 if any failed
# flood.py park PATH  (on the host) accept on unix socket PATH, never read
import errno, os, select, signal, socket, sys, threading, time

mode = sys.argv[1]
addr = ("127.0.0.1", int(sys.argv[2]) if sys.argv[2].isdigit() else 0)

def hold(n, nbytes):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        if s.connect_ex(addr) in (0, errno.EINPROGRESS):
            socks.append(s)
        else:
            s.close()
    ok, pending, end = [], set(socks), time.monotonic() + 10
    while pending and time.monotonic() < end:
        _, w, _ = select.select([], list(pending)[:900], [], 0.1)
        for s in w:
            pending.discard(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                ok.append(s)
    sent = 0
    if nbytes:
        chunk = b"m" * 65536
        left = {s: nbytes for s in ok}
        while left and time.monotonic() < end:
            _, w, _ = select.select([], list(left)[:900], [], 0.1)
            for s in w:
                try:
                    k = s.send(chunk[:left[s]])
                except OSError:
                    k = 0
                    left[s] = 0
                sent += k
                left[s] -= k
                if left[s] <= 0:
                    del left[s]
    print("connected %d sent %d" % (len(ok), sent), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait(120)
    for s in socks:
        s.close()

def churn(secs):
    end, c, f = time.monotonic() + secs, 0, 0
    while time.monotonic() < end:
        s = socket.socket()
        s.settimeout(0.2)
        try:
            s.connect(addr)
            c += 1
        except OSError:
            f += 1
        s.close()
    print("connects %d failed %d" % (c, f), flush=True)

def rtt(n, gap):
    lat, failed, msg = [], 0, b"x" * 64
    for i in range(n):
        t0 = time.monotonic()
        try:
            with socket.create_connection(addr, timeout=5) as s:
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    b = s.recv(64)
                    if not b:
                        break
                    got += b
                if got != msg:
                    raise OSError("short echo")
            lat.append((time.monotonic() - t0) * 1000)
        except OSError as e:
            failed += 1
            print("round trip %d: %s" % (i, e), file=sys.stderr)
        time.sleep(gap)
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else -1
    print("n %d failed %d p50 %.1f p99 %.1f max %.1f over500 %d" %
          (n, failed, pct(0.5), pct(0.99), lat[-1] if lat else -1,
           sum(x > 500 for x in lat)), flush=True)
    sys.exit(1 if failed else 0)

def park(path):
    # accept on a unix socket, never read: what is sent stays in the sender
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    os.chmod(path, 0o666)
    ls.listen(1024)
    conns, stop = [], threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    print("ready", flush=True)
    ls.settimeout(0.1)
    end = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < end:
        try:
            conns.append(ls.accept()[0])
        except socket.timeout:
            pass

if mode == "park":
    park(sys.argv[2])
elif mode == "hold":
    hold(int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
elif mode == "churn":
    churn(float(sys.argv[3]))
elif mode == "rtt":
    rtt(int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 0)
EOF
flood() {	# flood NS MODE PORT ARGS...: flood.py in NS
	ip netns exec "$1" "$PYTHON" "$T/flood.py" "${@:2}"
}

netns_new NA
netns_new NB
netns_new NC
start_server echo echo
start_server quiet echo
start_bg park "$PYTHON" "$T/flood.py" park "$T/park.sock"
wait_for 10 _has_line "$park_out" || bail "the parking upstream did not start"
conf_begin "$T/limits.yaml" "$NA" "$NB" "$NC"
conf_text "limits:
  connections_per_namespace: $LIMIT
  connections_per_second: $RATE
  burst: $BURST"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_service quiet "127.0.0.1:$quiet_port" 127.0.0.1:7001
conf_service park "unix:$T/park.sock" 127.0.0.1:7002
# Under AddressSanitizer, freed memory waits in a quarantine, its allocator
# (not glibc's: malloc_trim does nothing there) keeps pages as it likes and
# its shadow memory stays: (c)'s bound is checked by the plain build only.
slack=$((10 * 1024))
asan=
# (the whole output first: with pipefail, grep -q stopping early could make
# ldd die of SIGPIPE and the test take ASan's build for a plain one)
if [[ $(ldd "$NSRELAYD" 2>/dev/null) == *libasan* ]]; then
	asan=1
	DAEMON_PREFIX=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:allocator_release_to_os_interval_ms=0")
fi
daemon_up "$CONF"

# the daemon's connections to the upstream: one per live relayed connection
upstream_conns() {
	ss -Htn state established "( dport = :$echo_port )" | wc -l
}
conns_are() { [ "$(upstream_conns)" -eq "$1" ]; }
# connections the daemon holds from clients on PORT (in any namespace)
relayed() {
	local ns n=0
	for ns in "$NA" "$NB" "$NC"; do
		n=$((n + $(ip netns exec "$ns" ss -Htn state established "( sport = :$1 )" | wc -l)))
	done
	echo "$n"
}
rss() { proc_field "$DPID" VmRSS; }
# accepted NS: connections the daemon has accepted in NS (its stats)
accepted() {
	"$NSRELAYCTL" -s "$T/control.sock" stats "$1" --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print(sum(s["accepted"] for n in d["namespaces"] for s in n["services"]))'
}

check "a namespace is served before any flood" flood "$NB" rtt 7001 5
rss0=$(rss)
diag "nsrelayd VmRSS before the floods: $rss0 kB"

# ---- (a) idle flood ----------------------------------------------------
start_bg idle ip netns exec "$NA" "$PYTHON" "$T/flood.py" hold 7000 600
wait_for 20 _has_line "$idle_out"
like "$(cat "$idle_out")" "^connected 600 " \
	"(a) the flooder has 600 connections (the kernel queues what is not accepted)"
check_within 10 "(a) nsrelayd relays $LIMIT of them" conns_are $LIMIT
start_bg victim ip netns exec "$NB" "$PYTHON" "$T/flood.py" rtt 7001 50 0.02
check_bg 60 victim "(a) another namespace's 50 round trips succeed during the flood"
diag "(a) round trips: $(cat "$victim_out")"
max=$(awk '{print int($10)}' "$victim_out")
cmp_ok "${max:-99999}" -lt 2000 "(a) each round trip within 2 s (slowest ${max:-?} ms)"
n=$(upstream_conns)
cmp_ok "$n" -eq $LIMIT "(a) the flooder is still held at $LIMIT live connections"
like "$(grep -E "ns $NA: connection limit reached" "$DLOG" | head -1)" \
	"accepting paused .*; $LIMIT connections live" \
	"(a) the log says why the flooder waits, with its count"
stop_pid "$idle_pid"
check_within 10 "(a) the flooder's connections are gone once it closes them" conns_are 0
check_within 10 "(a) the flooder's namespace is served again" \
	flood "$NA" rtt 7000 3

# ---- (c) memory after a burst ------------------------------------------
# The upstream is a unix socket that never reads (a unix socket buffers
# about 200 KiB, without autotuning): each connection's 640 KiB fill the
# kernel, then the relay's buffer up to its high-water mark.
parked() {
	ss -Hx state established src "$T/park.sock" | wc -l
}
parked_are() { [ "$(parked)" -eq "$1" ]; }
start_bg data ip netns exec "$NA" "$PYTHON" "$T/flood.py" hold 7002 $LIMIT 655360
wait_for 30 _has_line "$data_out"
diag "(c) flooder: $(cat "$data_out")"
check_within 10 "(c) $LIMIT connections relayed to a upstream that reads nothing" \
	parked_are $LIMIT
# at least 20 MiB of it in the relay (about 300 KiB a connection)
grown() { [ "$(rss)" -ge $((rss0 + 20 * 1024)) ]; }
wait_for 20 grown
peak=$(rss)
diag "(c) nsrelayd VmRSS with the flood's data buffered: $peak kB"
cmp_ok "$peak" -ge $((rss0 + 20 * 1024)) \
	"(c) the relay holds the flood's data (RSS grew by $(( (peak - rss0) / 1024 )) MiB)"
# another user's connections, opened now, live on: their memory sits above
# the flood's in the heap, so free() alone cannot give the flood's back
start_bg pin ip netns exec "$NB" "$PYTHON" "$T/flood.py" hold 7001 4 1000
wait_for 10 _has_line "$pin_out"
pinned() { [ "$(relayed 7001)" -ge 4 ]; }
wait_for 10 pinned
stop_pid "$park_pid"		# the upstream goes: every relay ends
stop_pid "$data_pid"
no_conns() { [ "$(relayed 7002)" -eq 0 ]; }
check_within 10 "(c) the flood's connections are gone" no_conns
rss_back() { [ "$(rss)" -le $((rss0 + slack)) ]; }
if [ -z "$asan" ]; then
	check_within 5 "(c) VmRSS returns within 10 MiB of its value before the floods" rss_back
else
	# measured under ASan: 35 MiB -> 24 MiB one run, 102 -> 25 another
	wait_for 5 rss_back
	pass "(c) VmRSS returns after the floods # SKIP ASan's allocator and shadow decide what is returned, not malloc_trim; the plain build checks it"
fi
diag "(c) nsrelayd VmRSS after: $(rss) kB"
stop_pid "$pin_pid"

# ---- (b) connect-rate flood --------------------------------------------
a0=$(accepted "$NC")
t0=$(_now_us)
start_bg churn ip netns exec "$NC" "$PYTHON" "$T/flood.py" churn 7000 3
start_bg victim2 ip netns exec "$NB" "$PYTHON" "$T/flood.py" rtt 7001 100 0.02
check_bg 30 churn "(b) the connect/close flood ran"
diag "(b) flooder: $(cat "$churn_out")"
# the token bucket's bound, whatever the machine's speed: at most a burst
# and the rate times the time gone by (+1 for the fraction of a token)
a1=$(accepted "$NC")
el=$(( $(_now_us) - t0 ))
[[ $a0 =~ ^[0-9]+$ && $a1 =~ ^[0-9]+$ ]] ||
	bail "no accept counts from nsrelayctl stats: '$a0', '$a1'"
most=$(( BURST + RATE * el / 1000000 + 1 ))
cmp_ok "$((a1 - a0))" -le "$most" \
	"(b) the flooder's accepts stay within $BURST + $RATE/s ($((a1 - a0)) in $((el / 1000)) ms)"
check_bg 60 victim2 "(b) another namespace's 100 round trips succeed during it"
diag "(b) round trips: $(cat "$victim2_out")"
max=$(awk '{print int($10)}' "$victim2_out")
cmp_ok "${max:-99999}" -lt 2000 "(b) each round trip within 2 s (slowest ${max:-?} ms)"
# one line per namespace per 10 s: the first hold may have been the
# connection limit (the flooder's relays pile up too), the rate limit's line
# follows while its queue drains at the limited rate
rate_logged() { [ "$(log_count "ns $NC: connection rate limit reached")" -ge 1 ]; }
check_within 15 "(b) the rate limit is logged for the flooder" rate_logged
is "$(log_count "ns $NB: connection (rate )?limit")" 0 \
	"(b) and never for the other namespace"
# what the flooder left in its accept queue is relayed at the limited rate
queued() { ip netns exec "$NC" ss -Hltn "sport = :7000" | awk '{print $2}'; }
drained() { [ "$(queued)" = 0 ] && conns_are 0; }
check_within 40 "(b) the flood's queue drains and its connections end" drained

check "still serving after all floods" flood "$NB" rtt 7001 5
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
