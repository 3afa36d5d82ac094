#!/bin/bash
# SPDX-License-Identifier: MIT
# The control socket's status side under abuse: random bytes are answered
# with errors and the connection goes on; a 10 MiB line is refused with
# "error: line too long" without the daemon's memory growing; 500 clients
# of a user in control.group that connect, ask for stats again and again
# and never read: 64 hold a slot and the others are told "error: too many
# clients", root is answered all the same (its clients have slots of their
# own), the daemon's memory stays bounded and it keeps relaying; once they
# go, others are answered; a plain user (in control.group) asking to
# reload is refused.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"
command -v setpriv >/dev/null || skip_all "setpriv not found"
getent group nogroup >/dev/null || skip_all "no group nogroup"

ctl=$T/control.sock
netns_new A
netns_new Z
start_server echo echo
conf_begin "$T/abuse.yaml" --control none "$A" "$Z"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000 "[::1]:7000"
conf_service other "127.0.0.1:$echo_port" 127.0.0.1:7001
conf_text <<EOF
control:
  path: $ctl
  group: nogroup
  mode: 0660
provision:
  namespace: "nssa-$$-%u"
EOF
daemon_up "$CONF"
ctl() { "$NSRELAYCTL" -s "$ctl" "$@"; }
status_ok() { ctl status --json | grep -q '^{"version":'; }

cat >"$T/abuse.py" <<'PY'
import os, random, socket, sys, time

def conn(path, timeout=10):
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:	# the backlog is full for a moment
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.01)

def lines(s, n):
    f = s.makefile("rb")
    return [f.readline().decode(errors="replace").rstrip("\n") for _ in range(n)]

cmd, path = sys.argv[1], sys.argv[2]
if cmd == "random":		# 200 lines of random bytes, then status
    rnd = random.Random(42)
    s = conn(path)
    data = b""
    for i in range(200):
        data += bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(0, 200))).replace(b"\n", b" ") + b"\n"
    s.sendall(data + b"status\n")
    got = lines(s, 201)
    print("errors", sum(1 for l in got[:200] if l.startswith("error: ")))
    print("then", got[200][:11])
elif cmd == "bigline":		# 10 MiB without a newline
    s = conn(path)
    sent = 0
    try:
        while sent < 10 << 20:
            sent += s.send(b"s" * 65536)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    try:
        print(lines(s, 1)[0] or "<EOF>")
    except OSError as e:
        print("<%s>" % e)
    print("sent", sent, file=sys.stderr)
elif cmd == "hogs":		# N clients asking stats, never reading
    n = int(sys.argv[3])
    socks = []
    for i in range(n):
        s = conn(path)
        s.setblocking(False)
        socks.append(s)
    time.sleep(0.5)
    for s in socks:
        try:
            s.send(b"stats\n" * 20000)
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
    def counts():
        held = refused = 0
        for s in socks:
            try:
                b = s.recv(100, socket.MSG_PEEK)
                if b.startswith(b"error: too many clients"):
                    refused += 1
                else:
                    held += 1
            except BlockingIOError:
                held += 1
            except OSError:
                refused += 1
        return held, refused
    # the daemon turns the clients away in its own time: count until the
    # counts have stayed the same for a second (at most 20 s)
    last, since, end = None, 0, time.monotonic() + 20
    while time.monotonic() < end:
        now = counts()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 1:
            break
        time.sleep(0.05)
    held, refused = last
    print("held", held, "refused", refused, flush=True)
    time.sleep(600)
PY
abuse() { "$PYTHON" "$T/abuse.py" "$@"; }

# --- random bytes
out=$(abuse random "$ctl")
is "$out" "errors 200
then {\"version\":" "200 lines of random bytes: 200 errors, then status is answered"

# --- a 10 MiB line
rss0=$(proc_field "$DPID" VmRSS)
is "$(abuse bigline "$ctl" 2>"$T/big.err")" "error: line too long" "a 10 MiB line: error: line too long"
diag "$(cat "$T/big.err")"
rss1=$(proc_field "$DPID" VmRSS)
cmp_ok "$((rss1 - rss0))" -lt 8192 "... the daemon's memory does not grow by it (${rss0} -> ${rss1} kB)"
check "... and others are answered" status_ok

# --- 500 clients of a group member that ask and never read
as_member() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
rss0=$(proc_field "$DPID" VmRSS)
start_bg hogs setpriv --reuid=nobody --regid=nogroup --clear-groups "$PYTHON" "$T/abuse.py" hogs "$ctl" 500
wait_for 30 _has_line "$hogs_out" || bail "the hogs did not start: $(cat "$T/hogs.err")"
is "$(cat "$hogs_out")" "held 64 refused 436" "500 clients: 64 hold a slot, 436 are told too many clients"
check "while they hold: relaying goes on in A" peer_in "$A" echo --port 7000 --bytes 1M
check "... and in Z" peer_in "$Z" echo --port 7001 --bytes 1M
like "$(as_member "$NSRELAYCTL" -s "$ctl" status 2>&1)" "too many clients" \
	"while they hold: the member's 65th client is told too many clients"
check "... and root's is answered (slots of its own)" status_ok
rss1=$(proc_field "$DPID" VmRSS)
diag "VmRSS before ${rss0} kB, with 64 stalled stats readers ${rss1} kB"
cmp_ok "$((rss1 - rss0))" -lt 20480 "the daemon's memory stays bounded (< +20 MB)"
stop_pid "$hogs_pid"
check_within 5 "once they go, a client is answered" status_ok

# --- a plain user
run_as() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$NSRELAYCTL" -s "$ctl" "$@"; }
out=$(run_as reload 2>&1); rc=$?
is "$rc:$out" "1:nsrelayctl: permission denied" "a plain user's reload is refused"
like "$(log_count 'reloaded ')" '^0$' "... no reload was made"
out=$(run_as stats --json 2>/dev/null)
like "$out" '"namespaces":\[' "... its stats are answered (control.group)"

check "nsrelayd still runs" daemon_alive
check "relaying still works" peer_in "$A" echo --port 7000 --bytes 64k
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
