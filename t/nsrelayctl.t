#!/bin/bash
# SPDX-License-Identifier: MIT
# nsrelayctl: --help and usage errors (exit 2), a daemon that is not there
# (exit 3), check FILE (0, or 1 with every error at file:line:col), reload
# (ok generation N; a broken file: exit 1, every error printed, the old
# config still served, the raw answer "error: N errors", N lines, an empty
# line), status after reloads; who may do what: a plain user in
# control.group reads status and stats but is refused reload and provision,
# also when the group is only a supplementary one; a user outside the group
# cannot connect.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"
command -v setpriv >/dev/null || skip_all "setpriv not found"
getent group nogroup >/dev/null || skip_all "no group nogroup"
getent group daemon >/dev/null || skip_all "no group daemon"

ctl=$T/control.sock
run() {	# run CMD...: OUT, ERR, RC
	OUT=$("$@" 2>"$T/err"); RC=$?; ERR=$(cat "$T/err")
}
ctl() { "$NSRELAYCTL" -s "$ctl" "$@"; }
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

# --- without a daemon
run "$NSRELAYCTL" --help
is "$RC" 0 "--help: exit 0"
like "$OUT" "usage: nsrelayctl .*COMMAND" "--help: usage"
run "$NSRELAYCTL" frobnicate
is "$RC" 2 "an unknown command: exit 2"
run "$NSRELAYCTL" stats a b
is "$RC" 2 "too many arguments: exit 2"
run "$NSRELAYCTL" -s "$T/none.sock" status
is "$RC" 3 "no daemon: exit 3"
like "$ERR" "none.sock: No such file" "... saying why"

netns_new A
start_server echo echo
conf_begin "$T/good.yaml" --control none "$A"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_text <<EOF
control:
  path: $ctl
  group: nogroup
  mode: 0660
provision:
  namespace: "nsct-$$-%u"
EOF
run "$NSRELAYCTL" check "$CONF"
is "$RC:$OUT" "0:$CONF: ok, 1 services" "check FILE: a good file, exit 0"
cp "$CONF" "$T/bad.yaml"
cat >>"$T/bad.yaml" <<'EOF'
frobnicate: 1
defaults:
  idle_timeout: forever
EOF
run "$NSRELAYCTL" check "$T/bad.yaml"
is "$RC" 1 "check FILE: a broken file, exit 1"
like "$ERR" "bad.yaml:[0-9]+:[0-9]+: frobnicate: unknown key" "... the first error with file:line:col"
like "$ERR" "bad.yaml:[0-9]+:[0-9]+: defaults.idle_timeout" "... and the second"

daemon_up "$CONF"
is "$(stat -c '%a %U %G' "$ctl")" "660 root nogroup" "the socket has control.mode and control.group"

# --- reload
run ctl reload
is "$RC:$OUT" "0:ok generation 2" "reload: ok generation 2, exit 0"
cp "$T/bad.yaml" "$T/keep.yaml"
cp "$CONF" "$T/good.copy"
cp "$T/bad.yaml" "$CONF"
run ctl reload
is "$RC" 1 "reload of a broken file: exit 1"
like "$ERR" "^nsrelayctl: 2 errors" "... the count"
like "$ERR" "good.yaml:[0-9]+:[0-9]+: frobnicate: unknown key" "... each error with file:line:col"
like "$ERR" "good.yaml:[0-9]+:[0-9]+: defaults.idle_timeout" "... all of them"
raw=$("$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
s.sendall(b"reload\nstatus\n")
f = s.makefile("rb")
first = f.readline().decode()
print(first, end="")
n = int(first.split()[1])
for i in range(n): print("LINE", f.readline().decode().split(":")[0])
print("EMPTY" if f.readline() == b"\n" else "NOT EMPTY")
print("NEXT", f.readline().decode()[:1])' "$ctl")
is "$raw" "error: 2 errors
LINE $CONF
LINE $CONF
EMPTY
NEXT {" "the raw answer: error: N errors, N lines, an empty line, then the next answer"
check "the old config still serves" peer_in "$A" echo --port 7000 --bytes 4096
st=$(ctl status --json)
like "$st" '"generation":2[,}]' "status: generation still 2"
like "$st" '"last_reload":\{"ok":false,"at":[0-9.]+\}' "status: the last reload failed, with its time"
cp "$T/good.copy" "$CONF"
run ctl reload
is "$OUT" "ok generation 3" "a good file again: generation 3"
like "$(ctl status)" "generation 3, last reload: ok" "status: the human form"

# --- who may do what
run as_nobody "$NSRELAYCTL" -s "$ctl" status
is "$RC" 0 "a member of control.group (its gid): status"
run as_nobody "$NSRELAYCTL" -s "$ctl" stats "$A" --json
is "$RC" 0 "... stats"
like "$OUT" "\"name\":\"$A\"" "... the namespace's stats"
run as_nobody "$NSRELAYCTL" -s "$ctl" reload
is "$RC:$ERR" "1:nsrelayctl: permission denied" "... reload refused"
like "$(log_count 'reloaded .*generation 4')" '^0$' "... and not made"
run as_nobody "$NSRELAYCTL" -s "$ctl" provision daemon
is "$RC:$ERR" "1:nsrelayctl: permission denied" "... provision refused"
run setpriv --reuid=nobody --regid=daemon --groups=nogroup "$NSRELAYCTL" -s "$ctl" status
is "$RC" 0 "a member by a supplementary group: status"
run setpriv --reuid=nobody --regid=daemon --groups=nogroup "$NSRELAYCTL" -s "$ctl" reload
is "$RC:$ERR" "1:nsrelayctl: permission denied" "... reload refused"
run setpriv --reuid=nobody --regid=daemon --clear-groups "$NSRELAYCTL" -s "$ctl" status
is "$RC" 3 "outside the group: cannot connect (exit 3)"
like "$ERR" "Permission denied" "... permission denied"

check "nsrelayd still runs" daemon_alive
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
