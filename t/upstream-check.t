#!/bin/bash
# SPDX-License-Identifier: MIT
# Active health checks against fake servers: a MySQL server that accepts
# but never greets is marked down by the mysql check within fall x interval
# + timeout and gets no client once down; one that answers with an error
# packet ("Too many connections") is down; a good one is never down, and
# the check leaves it politely (logs in as the daemon's user, then
# COM_QUIT, then FIN).  A server that comes back is up after rise good
# checks.  smtp and imap checks tell a 220 / "* OK" / "* PREAUTH" greeting
# from a refusal ("554", "* BYE"), and a greeting that trickles in a byte
# at a time is judged within the timeout, not a byte's wait.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

start_server silent silent
start_server db2 mysql --text db2
start_server busy mysql-error
start_server mx1 greet --text "220 mx1 ESMTP ready"
start_server mx2 greet --text "554 5.3.2 mx2 not now"
start_server imap1 greet --text "* OK [CAPABILITY IMAP4rev1] imap1 ready"
start_server imap2 greet --text "* PREAUTH imap2 welcome"
start_server imap3 greet --text "* BYE imap3 shutting down"
# a greeting that trickles, a byte every 100 ms: each byte comes well
# within the timeout, the whole line does not
cat >"$T/trickle.py" <<'PY'
import socket, threading, time
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(64)
print(ls.getsockname()[1], flush=True)
def run(c):
	try:
		for b in b"220 slow mail server ready\r\n":
			c.sendall(bytes([b]))
			time.sleep(0.1)
		c.recv(100)
	except OSError:
		pass
	c.close()
while True:
	c, _ = ls.accept()
	threading.Thread(target=run, args=(c,), daemon=True).start()
PY
start_bg slow "$PYTHON" "$T/trickle.py"
wait_for 5 _has_line "$T/slow.out" || bail "the trickling server did not start"
slow_port=$(head -n1 "$T/slow.out")
netns_new NS
conf_begin "$T/check.yaml" "$NS"
conf_text <<YAML
services:
  mysql:
    listen: "127.0.0.1:3306"
    upstream: ["127.0.0.1:$silent_port", "127.0.0.1:$db2_port"]
    balance: roundrobin
    check: { protocol: mysql, interval: 500ms, timeout: 250ms, rise: 2, fall: 3 }
  busy:
    listen: "127.0.0.1:3307"
    upstream: ["127.0.0.1:$busy_port"]
    check: { protocol: mysql, interval: 300ms, timeout: 250ms, rise: 2, fall: 2 }
  smtp:
    listen: "127.0.0.1:25"
    upstream: ["127.0.0.1:$mx1_port", "127.0.0.1:$mx2_port"]
    check: { protocol: smtp, interval: 300ms, fall: 2 }
  slow:
    listen: "127.0.0.1:587"
    upstream: ["127.0.0.1:$slow_port", "127.0.0.1:$mx1_port"]
    check: { protocol: smtp, interval: 1s, timeout: 500ms, fall: 2 }
  imap:
    listen: "127.0.0.1:143"
    upstream: ["127.0.0.1:$imap1_port", "127.0.0.1:$imap2_port", "127.0.0.1:$imap3_port"]
    balance: roundrobin
    check: { protocol: imap, interval: 300ms, fall: 2 }
YAML
CONF_LISTEN=(127.0.0.1:3306 127.0.0.1:3307 127.0.0.1:25 127.0.0.1:587 127.0.0.1:143)
t0=$(_now_us)
daemon_up "$CONF"

down() { grep -q "$1: server 127.0.0.1:$2 is down" "$DLOG"; }
check_within 5 "mysql: the server that never greets is marked down" \
	down mysql "$silent_port"
# the daemon's log lines carry no time: measure from the start, which is
# an upper bound (the checks start with the daemon)
ms=$(( ($(_now_us) - t0) / 1000 ))
cmp_ok "$ms" -le 2500 "... within fall x interval + timeout (1.75 s) of the start, with start-up"
diag "marked down ${ms} ms after the daemon was started"
like "$(grep "is down" "$DLOG" | grep "$silent_port")" \
	"3 failures in a row, the last: no greeting in time" \
	"... for want of a greeting, after 3 failures"

n=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	peer_in "$NS" mysql --port 3306 --expect db2 --timeout 3 >/dev/null &&
		n=$((n + 1))
done
is "$n" 10 "once it is down, 10 clients of 10 go to the good server (round robin)"

check "the good server is never marked down" \
	sh -c "! grep -q 'server 127.0.0.1:$db2_port is down' '$DLOG'"
polite() {
	grep -qx "login nobody" "$db2_out" && grep -qx quit "$db2_out" &&
	grep -qx closed "$db2_out"
}
check_within 3 "the mysql check logs in as the daemon's user, sends COM_QUIT and closes" polite

check_within 5 "an error packet at the handshake is down" down busy "$busy_port"
like "$(grep "busy: server" "$DLOG")" "error packet 1040: Too many connections" \
	"... with the server's error in the log"
check "a service whose only server is down resets its client" \
	peer_in "$NS" expect-reset --port 3307
# the busy server comes back as a good one on the same port: up after rise
stop_pid "$busy_pid"
start_server busy mysql --port "$busy_port" --text busy-again
up_again() { grep -q "busy: server 127.0.0.1:$busy_port is up again (2 good checks)" "$DLOG"; }
check_within 5 "a server that answers again is up after rise (2) good checks" up_again
check "... and serves clients" peer_in "$NS" mysql --port 3307 --expect busy-again

check_within 5 "smtp: a 554 greeting is down" down smtp "$mx2_port"
check "smtp: the 220 server is never down" \
	sh -c "! grep -q 'server 127.0.0.1:$mx1_port is down' '$DLOG'"
check "smtp: clients go to the 220 server" \
	peer_in "$NS" greet --port 25 --expect "220 mx1 ESMTP ready"
check_within 5 "smtp: a greeting that trickles past the timeout is down" down slow "$slow_port"
like "$(grep "slow: server 127.0.0.1:$slow_port is down" "$DLOG")" "no greeting in time" \
	"... for want of a whole greeting in time"
check_within 5 "imap: a * BYE greeting is down" down imap "$imap3_port"
check "imap: * OK and * PREAUTH are never down" \
	sh -c "! grep -Eq 'server 127.0.0.1:($imap1_port|$imap2_port) is down' '$DLOG'"
got=
for i in 1 2 3 4; do
	got="$got|$(peer_in "$NS" readline --port 143)"
done
like "$got" "^(\|\* (OK|PREAUTH) [^|]*){4}$" "imap: four clients, none sent to the * BYE server"
daemon_alive
ok $? "the daemon is alive"
done_testing
