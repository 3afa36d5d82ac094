#!/bin/bash
# SPDX-License-Identifier: MIT
# sd_notify: nsrelayd run as systemd runs a Type=notify unit, with
# NOTIFY_SOCKET on a datagram socket of the test and WATCHDOG_USEC=2000000.
# READY=1 once the listeners are up, WATCHDOG=1 every second (half
# the period, as sd_watchdog_enabled(3) advises), RELOADING=1 with a
# MONOTONIC_USEC of the moment then READY=1 around a reload (a failed one
# too: systemd would otherwise wait in "reloading"), STATUS= lines,
# STOPPING=1 at SIGTERM, in that order; WATCHDOG_PID naming another process
# turns the watchdog off.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NS
start_server echo echo
conf_begin "$T/n.yaml" "$NS"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000

# The listener: one line per datagram, "USEC_RECEIVED VAR=...|VAR=...",
# USEC_RECEIVED on CLOCK_MONOTONIC (as MONOTONIC_USEC is).
notify_listen() {	# notify_listen NAME SOCKET
	start_bg "$1" "$PYTHON" -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)    # the daemon sends as its user
out = open(sys.argv[2], "a")
while True:
    msg = s.recv(65536).decode(errors="replace")
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    out.write("%d %s\n" % (t, msg.strip("\n").replace("\n", "|")))
    out.flush()' "$2" "$T/$1.lines"
	wait_for 5 test -S "$2" || bail "notify listener did not start"
}

# kinds NAME: the messages in order, STATUS= and WATCHDOG=1 left out
kinds() {
	cut -d' ' -f2- "$T/$1.lines" | grep -v '^STATUS=' |
		grep -v '^WATCHDOG=1$' | sed 's/|.*//' | tr '\n' ' '
}
has() { grep -q -- "$2" "$T/$1.lines" 2>/dev/null; }
count() { grep -c -- "$2" "$T/$1.lines" 2>/dev/null || true; }
at_least() { [ "$(count "$1" "$2")" -ge "$3" ]; }	# at_least NAME ERE N

notify_listen nl "$T/notify.sock"
# WATCHDOG_PID = the daemon's own pid, as systemd sets it: exec keeps it
DAEMON_PREFIX=(env NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=2000000
	sh -c 'WATCHDOG_PID=$$ exec "$@"' sh)
daemon_up "$CONF"
check_within 5 "READY=1 arrives" has nl '^[0-9]* READY=1'
# no wait here: the listener must be up by the time READY=1 is sent
check "READY=1 comes after the listeners are up" _listening "$NS" 127.0.0.1:7000
check_within 5 "STATUS= summary: listeners up" has nl 'STATUS=1 of 1 listeners up'

# The watchdog: every half period (1 s of a 2 s WATCHDOG_USEC); a loaded
# machine may delay one by a second, never by the whole period.
wait_for 15 at_least nl 'WATCHDOG=1' 6
cmp_ok "$(count nl 'WATCHDOG=1')" -ge 6 "WATCHDOG=1 keeps coming"
gap=$(awk '$2 == "WATCHDOG=1" { if (p) { g = $1 - p; if (g > m) m = g }
	p = $1 } END { print m + 0 }' "$T/nl.lines")
cmp_ok "$gap" -lt 2000000 "longest gap between WATCHDOG=1 below WATCHDOG_USEC (${gap} us)"

# reload: RELOADING=1 with the moment it started, then READY=1
kill -HUP "$DPID"
check_within 5 "reload done (generation 2)" grep -q "generation 2" "$DLOG"
check_within 5 "READY=1 again after the reload" \
	at_least nl '^[0-9]* READY=1' 2
line=$(grep -m1 'RELOADING=1' "$T/nl.lines")
like "$line" '^[0-9]+ RELOADING=1\|MONOTONIC_USEC=[0-9]+$' \
	"RELOADING=1 carries MONOTONIC_USEC"
recv=${line%% *}
mono=${line##*MONOTONIC_USEC=}
if [ "$mono" -le "$recv" ] && [ "$((recv - mono))" -lt 10000000 ]; then
	pass "MONOTONIC_USEC is the moment of the reload on CLOCK_MONOTONIC"
else
	fail "MONOTONIC_USEC is the moment of the reload on CLOCK_MONOTONIC" \
		"MONOTONIC_USEC=$mono, received at $recv"
fi

# a reload that fails still ends with READY=1 (the old config serves)
cp "$CONF" "$T/good.yaml"
printf 'services:\n  broken: {listen: 1, upstream: 2}\n' >>"$CONF"
kill -HUP "$DPID"
check_within 5 "failed reload logged" grep -q "reload failed" "$DLOG"
check_within 5 "READY=1 after a failed reload too" \
	at_least nl '^[0-9]* READY=1' 3
n0=$(count nl 'WATCHDOG=1')
wait_for 10 at_least nl 'WATCHDOG=1' $((n0 + 3))
cmp_ok "$(count nl 'WATCHDOG=1')" -ge $((n0 + 3)) "WATCHDOG=1 goes on after the reloads"

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
check_within 2 "STOPPING=1 arrives" has nl 'STOPPING=1'
is "$(kinds nl)" "READY=1 RELOADING=1 READY=1 RELOADING=1 READY=1 STOPPING=1 " \
	"READY, RELOADING, READY, RELOADING, READY, STOPPING in that order"
last=$(tail -n1 "$T/nl.lines" | cut -d' ' -f2-)
like "$last" '^(STOPPING=1|STATUS=.*)$' "nothing but STATUS= after STOPPING=1"

# WATCHDOG_PID naming another process: that process is watched, not us
cp "$T/good.yaml" "$CONF"
notify_listen nl2 "$T/notify2.sock"
DAEMON_PREFIX=(env NOTIFY_SOCKET="$T/notify2.sock" WATCHDOG_USEC=200000
	WATCHDOG_PID=1)
daemon_up -d "second daemon: listeners up" "$CONF"
check_within 5 "second daemon: READY=1" has nl2 '^[0-9]* READY=1'
# three periods
wait_for 0.6 false
is "$(count nl2 'WATCHDOG=1')" 0 "WATCHDOG_PID of another process: no WATCHDOG=1"
stop_daemon
is "$DSTATUS" 0 "second daemon exits 0"

done_testing
