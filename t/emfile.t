#!/bin/bash
# SPDX-License-Identifier: MIT
# Running out of file descriptors: under RLIMIT_NOFILE 64 and 65, a flood
# of 150 connections from one namespace is held at its fair share of the
# descriptors before they run out (the log says so); then a flood from 20
# namespaces at once, each below its share, runs the budget dry: what does
# not fit is reset and accepting pauses (the log says so).  Neither makes
# nsrelayd spin (CPU) nor flood its log, and once a flood is gone the
# daemon serves again.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v prlimit >/dev/null || skip_all "prlimit (util-linux) not found"

netns_new NS
start_server echo echo

conf_begin "$T/emfile.yaml" "$NS"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
# Which call runs out first, accept() or the upstream socket(), depends on
# the parity of the descriptors left: flood at two limits so that both paths
# are exercised (without the listener's error callback, libevent spins).
for lim in 64 65; do
	DAEMON_PREFIX=(prlimit --nofile=$lim:$lim)
	DAEMON_VERBOSE=	# no per-connection lines: the log's size is measured
	daemon_up -d "$lim: listener up" "$CONF"
	limit=$(awk '/^Max open files/ { print $4 "/" $5 }' "/proc/$DPID/limits")
	is "$limit" "$lim/$lim" "nsrelayd runs with RLIMIT_NOFILE $lim"
	check "echo works before the flood" peer_in "$NS" echo --port 7000 --bytes 64KiB

	start_bg flood ip netns exec "$NS" "$PYTHON" "$PEER" hold --port 7000 --n 150 \
		--connect-wait 5 --max-life 60
	wait_for 10 _has_line "$flood_out"
	diag "flood: $(cat "$flood_out")"
	fair_logged() { grep -q 'above its fair share of the descriptors' "$DLOG"; }
	if wait_for 10 fair_logged; then
		pass "$lim: log: the namespace is held at its fair share"
	else
		fail "$lim: log: the namespace is held at its fair share" \
			"fds in use: $(ls "/proc/$DPID/fd" 2>/dev/null | wc -l)"
	fi

	# CPU over a 2 s window while the flood is held.
	hz=$(getconf CLK_TCK)
	lines0=$(log_count 'descriptors')
	all0=$(wc -l <"$DLOG")
	t0=$(cpu_ticks "$DPID")
	sleep 2	# the measuring window
	t1=$(cpu_ticks "$DPID")
	lines1=$(log_count 'descriptors')
	all1=$(wc -l <"$DLOG")
	cpu_ms=$(( (t1 - t0) * 1000 / hz ))
	diag "CPU over 2 s: ${cpu_ms} ms; log lines in 2 s: $((lines1 - lines0))\
	 'descriptors', $((all1 - all0)) in all; $all1 in the log"
	cmp_ok "$cpu_ms" -lt 300 "$lim: no busy loop: < 0.3 s CPU over 2 s of the flood"
	cmp_ok $((lines1 - lines0)) -le 5 "$lim: at most 5 'descriptors' log lines in 2 s"
	cmp_ok "$all1" -lt 50 "$lim: the log does not explode (< 50 lines)"
	daemon_alive || bail "nsrelayd died under the flood"

	stop_pid "$flood_pid"
	check_within 15 "$lim: after the flood, a new connection is served" \
		peer_in "$NS" echo --port 7000 --bytes 64KiB --timeout 3
	# a namespace alone may hold three quarters of the connections'
	# budget ((64 - 16 reserved - 1 listener) / 2 = 23): 16 of them
	check "16 concurrent connections then (no descriptor leaked)" \
		peer_in "$NS" concurrent --port 7000 --n 16 --bytes 4KiB --timeout 10

	stop_daemon
	is "$DSTATUS" 0 "$lim: nsrelayd exits 0 on SIGTERM"
done

# 20 namespaces (20 listeners: (64 - 16 - 20) / 2 = 14 connections fit),
# each opening 10 connections at once: each takes one or more before it is
# held, until the budget is dry
NSS=()
for i in $(seq 20); do
	netns_new N
	NSS+=("$N")
done
conf_begin "$T/emfile2.yaml" "${NSS[@]}"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
DAEMON_PREFIX=(prlimit --nofile=64:64)
DAEMON_VERBOSE=
daemon_up -d "20 namespaces: listeners up" "$CONF"
cat >"$T/many.py" <<'PY'
# many.py N NS...: N connections to 127.0.0.1:7000 in each namespace NS,
# opened at once; held until SIGTERM
import ctypes, errno, os, signal, socket, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
n = int(sys.argv[1])
socks = []
for ns in sys.argv[2:]:
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        sys.exit("setns %s: %s" % (ns, os.strerror(ctypes.get_errno())))
    os.close(fd)
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        if s.connect_ex(("127.0.0.1", 7000)) in (0, errno.EINPROGRESS):
            socks.append(s)
print("opened %d" % len(socks), flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
stop.wait(60)
PY
start_bg many "$PYTHON" "$T/many.py" 10 "${NSS[@]}"
wait_for 10 _has_line "$many_out"
diag "flood: $(cat "$many_out")"
dry_logged() { grep -qi 'out of file descriptors' "$DLOG"; }
check_within 10 "20 namespaces: log: out of file descriptors" dry_logged
hz=$(getconf CLK_TCK)
lines0=$(log_count 'descriptors')
t0=$(cpu_ticks "$DPID")
sleep 2	# the measuring window
t1=$(cpu_ticks "$DPID")
lines1=$(log_count 'descriptors')
cpu_ms=$(( (t1 - t0) * 1000 / hz ))
diag "CPU over 2 s: ${cpu_ms} ms; 'descriptors' log lines in 2 s: $((lines1 - lines0))"
cmp_ok "$cpu_ms" -lt 300 "20 namespaces: no busy loop: < 0.3 s CPU over 2 s"
cmp_ok $((lines1 - lines0)) -le 5 "20 namespaces: at most 5 'descriptors' log lines in 2 s"
daemon_alive || bail "nsrelayd died under the flood"
stop_pid "$many_pid"
served_all() {
	local n
	for n in "${NSS[@]}"; do
		peer_in "$n" echo --port 7000 --bytes 1KiB --timeout 3 || return 1
	done
}
check_within 15 "20 namespaces: after the flood, every one is served" served_all
stop_daemon
is "$DSTATUS" 0 "20 namespaces: nsrelayd exits 0 on SIGTERM"
done_testing
