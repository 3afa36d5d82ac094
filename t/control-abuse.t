#!/bin/bash
# SPDX-License-Identifier: MIT
# The control socket under abuse: it is mode 0600 from the moment it exists
# (even while the daemon has not yet reached its chmod); the client of
# control.group beyond its limit of 64 is told "error: too many clients",
# not met with silence, and root's next client is served all the same;
# a NUL byte in a line and a line over 1024 bytes are refused with an error;
# a client that sends 4 MiB of newlines and never reads its answers does not
# make the daemon's memory grow, and others are answered meanwhile; a client
# of the group that stops reading its answers is dropped after the 30 s
# timeout, which frees its slot.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v strace >/dev/null || skip_all "strace not found"
command -v setpriv >/dev/null || skip_all "setpriv not found"

ctl=$T/control.sock
# the group's member: a uid and gid with no entry (control.group takes a
# number)
mon=$((70000 + $$ % 10000))
getent group "$mon" >/dev/null && bail "gid $mon is taken"
as_mon() { setpriv --reuid="$mon" --regid="$mon" --clear-groups "$@"; }
start_server echo echo
write_conf() {	# write_conf FILE CONTROL [GROUP]
	conf_begin "$1" --control none --all "hxca-$$-*"
	conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
	printf 'control:\n  path: %s\n' "$2" >>"$CONF"
	[ -z "${3-}" ] || printf '  group: "%s"\n  mode: "0660"\n' "$3" >>"$CONF"
	conf_text <<EOF
provision:
  namespace: "hxca-$$-%u"
  host_interface: "hxca%i"
EOF
}

cat >"$T/ctl.py" <<'PY'
import os, socket, sys, time

def conn(path, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s

def line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(4096)
        if not b:
            return buf.decode(errors="replace") + "<EOF>"
        buf += b
    return buf[:-1].decode(errors="replace")

def ask(path, data, timeout=5):
    s = conn(path, timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass		# refused at once: its line is still to be read
        return line(s)
    finally:
        s.close()

def probe(path):
    """a fresh client is answered"""
    try:
        return ask(path, b"provision nosuchuser-probe\n", 3)
    except OSError as e:
        return "<%s>" % e

cmd, path = sys.argv[1], sys.argv[2]
if cmd == "ask":			# ask PATH PYTHON-BYTES-LITERAL
    print(ask(path, eval(sys.argv[3])))
elif cmd == "probe":
    print(probe(path))
elif cmd == "limit":		# 64 idle clients, then the 65th
    held = [conn(path) for _ in range(64)]
    # each of them is accepted (answered) before the 65th comes
    for s in held[-1:]:
        s.sendall(b"frobnicate\n")
        print("64th:", line(s))
    try:
        s = conn(path)
        print("65th:", line(s))
    except OSError as e:
        print("65th: <%s>" % e)
    held.pop().close()
    # the daemon sees the close in its own time: ask until a fresh client
    # is served or 10 s have gone by
    end = time.monotonic() + 10
    while True:
        a = probe(path)
        if "too many clients" not in a or time.monotonic() > end:
            break
        time.sleep(0.05)
    print("after one left:", a)
elif cmd == "flood":		# 4 MiB of newlines, never reads
    s = conn(path)
    s.setblocking(False)
    data, sent = b"\n" * (4 << 20), 0
    end = time.monotonic() + float(sys.argv[3])
    while sent < len(data) and time.monotonic() < end:
        try:
            sent += s.send(data[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    print("sent", sent, flush=True)
    time.sleep(600)
elif cmd == "stall":		# a client that stops reading its answers
    keep = [conn(path) for _ in range(63)]
    s = conn(path)
    s.setblocking(False)
    data, sent = b"frobnicate\n" * 100000, 0
    t0 = time.monotonic()
    while time.monotonic() < t0 + 3:
        try:
            sent += s.send(data[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.05)
    print("stalled after", sent, "bytes", flush=True)
    print("while stalled:", probe(path), flush=True)
    t0 = time.monotonic()
    last_keep = 0
    while time.monotonic() < t0 + float(sys.argv[3]):
        if time.monotonic() - last_keep > 5:
            for k in keep:		# the others stay busy, not idle
                k.sendall(b"frobnicate\n")
                line(k)
            last_keep = time.monotonic()
        a = probe(path)
        if not a.startswith("error: too many clients"):
            print("freed after %.0f s: %s" % (time.monotonic() - t0, a))
            break
        time.sleep(0.5)
    else:
        print("not freed")
    try:
        got = 0
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += len(b)
        print("staller: closed by the daemon")
    except BlockingIOError:
        print("staller: still open")
    except OSError as e:
        print("staller: closed by the daemon (%s)" % e)
PY
ctl() { "$PYTHON" "$T/ctl.py" "$@"; }

# --- mode 0600 from the start: the daemon runs with umask 0 and every
# chmod it makes is held back 2 s (strace): the socket must be 0600 as it
# is created by bind(), not only after the chmod that follows
write_conf "$T/umask.yaml" "$T/umask.sock"
(umask 0; exec strace -f -qq -o /dev/null -e trace=chmod,fchmodat \
	-e inject=chmod,fchmodat:delay_enter=2000000 \
	"$NSRELAYD" -f -c "$CONF") >"$T/umask.log" 2>&1 &
spid=$!
_pids+=("$spid")
sock_there() { [ -S "$T/umask.sock" ]; }
if wait_for 10 sock_there; then
	is "$(stat -c %a "$T/umask.sock")" 600 \
		"the control socket is 0600 as bind() creates it (before chmod)"
else
	fail "the control socket is 0600 as bind() creates it (before chmod)" \
		"$(cat "$T/umask.log")"
fi
dpid=$(cat "/proc/$spid/task/$spid/children" 2>/dev/null | awk '{print $1}')
[ -n "$dpid" ] && kill -TERM "$dpid"
stop_pid "$spid"

write_conf "$T/abuse.yaml" "$ctl" "$mon"
daemon_up -d "nsrelayd started" "$CONF"
is "$(stat -c '%a %U %g' "$ctl")" "660 root $mon" \
	"the control socket: 0660, root's, group $mon"
like "$(ctl probe "$ctl")" '^error: no such user' "a client is answered"
like "$(as_mon "$PYTHON" "$T/ctl.py" probe "$ctl")" '^error: permission denied' \
	"... a member of the group too (not allowed to provision)"

# --- bad lines
like "$(ctl ask "$ctl" 'b"provision ro\x00ot\n"')" '^error: .*NUL' \
	"a NUL byte in a line: refused with an error (not a cut user name)"
is "$(ctl ask "$ctl" 'b"provision " + b"a" * 1100 + b"\n"')" "error: line too long" \
	"a line over 1024 bytes: error: line too long"
is "$(ctl ask "$ctl" 'b"x" * 5000')" "error: line too long" \
	"... also without a newline"

# --- the group's 65th client; root's are counted apart
out=$(as_mon "$PYTHON" "$T/ctl.py" limit "$ctl")
diag "$out"
like "$(grep '^64th:' <<<"$out")" '^64th: error: unknown command' "64 clients are served"
is "$(grep '^65th:' <<<"$out")" "65th: error: too many clients" \
	"the 65th is told: error: too many clients"
like "$(grep '^after one left:' <<<"$out")" 'error: permission denied' \
	"once one leaves, a new client is served"

# --- 4 MiB of newlines from a client that never reads
rss0=$(proc_field "$DPID" VmRSS)
start_bg flood "$PYTHON" "$T/ctl.py" flood "$ctl" 5
wait_for 10 _has_line "$flood_out" || bail "flood client did not start"
diag "flood: $(cat "$flood_out")"
rss1=$(proc_field "$DPID" VmRSS)
diag "VmRSS before ${rss0} kB, during the flood ${rss1} kB"
cmp_ok "$((rss1 - rss0))" -lt 20480 "daemon RSS stays bounded (< +20 MB) under 4 MiB of newlines"
like "$(ctl probe "$ctl")" '^error: no such user' "another client is answered during the flood"
check "the relay is unaffected" daemon_alive
stop_pid "$flood_pid"

# --- a client that stops reading is dropped after 30 s, its slot freed
out=$(as_mon "$PYTHON" "$T/ctl.py" stall "$ctl" 45)
diag "$out"
like "$(grep '^while stalled:' <<<"$out")" 'too many clients' \
	"64 clients, one of them not reading: the next is refused"
freed=$(sed -n 's/^freed after \([0-9]*\) s.*/\1/p' <<<"$out")
if [ -n "$freed" ]; then
	cmp_ok "$freed" -le 40 "the client that stopped reading is dropped within the timeout (${freed} s)"
	cmp_ok "$freed" -ge 20 "... not before it (30 s)"
else
	fail "the client that stopped reading is dropped within the timeout" "$out"
fi
like "$(grep '^staller:' <<<"$out")" 'closed by the daemon' "... its connection is closed"
check "nsrelayd still runs" daemon_alive
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
