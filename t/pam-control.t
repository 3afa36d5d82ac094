#!/bin/bash
# SPDX-License-Identifier: MIT
# pam_nsrelay against the control socket as an administrator sets it up and
# as others use it: a socket given to a monitoring group (control.group,
# mode 0660) still serves logins; 64 idle clients of that group (the most a
# non-root client may hold; the 65th is refused) and then 64 more of root
# do not keep 50 concurrent logins out; with every slot of root's taken the
# next client waits in the backlog instead of being refused, and is served
# once a slot frees; a namespace with 40 squatted ports, whose answer once
# overflowed the module's buffer, still lets its user log in, and the
# answer names a few reasons and counts the rest.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v pamtester >/dev/null || skip_all "pamtester not found"
command -v useradd >/dev/null || skip_all "useradd not found"
command -v setpriv >/dev/null || skip_all "setpriv not found"
. "$top_srcdir/t/pam-lib.sh"
test_cleanup() { pam_cleanup; }

NU=10
NSQ=40			# squatted ports: their reasons alone are > 1 KiB
ROOT_SLOTS=256		# engine/control.c: ROOT_CLIENTS
pool_claim I0 UB
pre="nsrpc-$$-"
users=()
for ((i = 0; i < NU; i++)); do
	u="nsrpc$$u$i"
	users+=("$u")
	pam_user_add "$u" $((UB + I0 + i))
	netns_adopt "$pre$u"
	link_adopt "npc$((I0 + i))"
done
u0=${users[0]}
# the monitoring account: a uid and gid of this test's pool block, no
# passwd or group entry needed (control.group takes a number)
mon=$((UB + I0 + NU))
getent group "$mon" >/dev/null && bail "gid $mon is taken"
ctl=$T/control.sock
rec=$T/rec
svc="nsrt-pamc-$$"

cat >"$T/record.sh" <<EOF
#!/bin/sh
[ "\$PAM_TYPE" = open_session ] || exit 0
echo "\$PAM_USER \$(readlink /proc/self/ns/net)" >>"$rec"
EOF
chmod 0755 "$T/record.sh"
pam_service "$svc" <<EOF
auth     required pam_permit.so
account  required pam_permit.so
session  required $PAM_MODULE socket=$ctl timeout=10
session  required pam_exec.so quiet $T/record.sh
EOF
login() {	# login USER: open and close a session
	"${PAM_ENV[@]}" pamtester "$svc" "$1" open_session close_session
}
last_ns() {	# last_ns USER: the inode of USER's last recorded session
	local l
	l=$(grep "^$1 " "$rec" | tail -n1)
	l=${l##*net:[}
	echo "${l%]}"
}

# hold.py PATH N [probe]: N clients, each answered once (so the daemon has
# accepted it) then idle; "held N".  With probe, one more client asks and
# is given 1.5 s; then one held client leaves and the waiting one gets 10 s.
# Then it stays until killed.
cat >"$T/hold.py" <<'PY'
import signal, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])

def line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(4096)
        if not b:
            return buf.decode(errors="replace") + "<EOF>"
        buf += b
    return buf[:-1].decode(errors="replace")

held = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(b"frobnicate\n")
    except (BrokenPipeError, ConnectionResetError):
        pass		# refused at once: its line is still to be read
    a = line(s)
    if not a.startswith("error: unknown"):
        print("client %d: %s" % (i + 1, a), flush=True)
        sys.exit(1)
    held.append(s)
print("held", len(held), flush=True)
if sys.argv[3:] == ["probe"]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"provision nosuchuser-probe\n")
    s.settimeout(1.5)
    try:
        print("extra:", line(s), flush=True)
    except socket.timeout:
        print("extra: waiting", flush=True)
        held.pop().close()
        s.settimeout(10)
        try:
            print("after one left:", line(s), flush=True)
        except socket.timeout:
            print("after one left: nothing in 10 s", flush=True)
    s.close()
print("done", flush=True)
signal.pause()
PY
chmod 0644 "$T/hold.py"
as_mon() { setpriv --reuid="$mon" --regid="$mon" --clear-groups "$@"; }
ask() {		# ask PATH LINE: one request, its answer line
	"$PYTHON" - "$@" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
s.shutdown(socket.SHUT_WR)
buf = b""
while not buf.endswith(b"\n"):
    b = s.recv(65536)
    if not b:
        break
    buf += b
print(buf.decode(errors="replace").rstrip("\n"))
PY
}

start_server echo echo
write_conf() {	# write_conf [SQUATTED-SERVICE]
	cat >"$T/pamc.yaml" <<EOF
user: nobody
bind_retry_max: 1s
namespaces:
  all: true
  match: "$pre*"
services:
  echo:
    listen: ["127.0.0.1:7000"]
    upstream: "127.0.0.1:$echo_port"
EOF
	if [ -n "${1-}" ]; then
		printf '  sq:\n    upstream: "127.0.0.1:%s"\n    listen:\n' \
			"$echo_port"
		for ((p = 7100; p < 7100 + NSQ; p++)); do
			printf '      - "127.0.0.1:%s"\n' "$p"
		done
	fi >>"$T/pamc.yaml"
	cat >>"$T/pamc.yaml" <<EOF
control:
  path: $ctl
  group: "$mon"
  mode: "0660"
provision:
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "npc%i"
EOF
	chmod 0644 "$T/pamc.yaml"
}
write_conf
start_daemon "$T/pamc.yaml"
started() { grep -q "started" "$DLOG"; }
wait_for 10 started || bail "nsrelayd did not start"

# --- control.group with mode 0660: monitoring and logins together
is "$(stat -c '%a %U %g' "$ctl")" "660 root $mon" \
	"the control socket: 0660, root's, group $mon"
like "$(as_mon "$PYTHON" - "$ctl" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"status\n")
print(s.recv(200).decode(errors="replace")[:40])
PY
)" '^\{' "a member of the group reads the status"
check "$u0: a login opens its session" login "$u0"
is "$(last_ns "$u0")" "$(ns_inode "$pre$u0")" "... in its namespace"

# --- 64 idle clients of the group, then 50 concurrent logins
start_bg monhold as_mon "$PYTHON" "$T/hold.py" "$ctl" 64
check_within 20 "the group's member holds 64 idle clients" \
	grep -qx "held 64" "$monhold_out"
like "$(as_mon "$PYTHON" "$T/hold.py" "$ctl" 1 2>&1 | head -n1)" \
	'too many clients' "... its 65th is refused: too many clients"
logins() {	# logins TAG: 5 concurrent logins of each user; NFAIL
	local k u p pids=()
	for ((k = 0; k < 5; k++)); do
		for u in "${users[@]}"; do
			login "$u" >"$T/$1.$u.$k" 2>&1 &
			pids+=($!)
		done
	done
	nfail=0
	for p in "${pids[@]}"; do wait "$p" || nfail=$((nfail + 1)); done
	[ "$nfail" = 0 ] || diag "$(cat "$T/$1".* | sort | uniq -c | head -n 5)"
}
in_own_ns() {	# each user's 5 sessions of $rec in its namespace: BAD
	local u want got
	bad=
	for u in "${users[@]}"; do
		want=$(ns_inode "$pre$u" 2>/dev/null) ||
			{ bad+=" $u:no-namespace"; continue; }
		got=$(grep "^$u " "$rec" | sed 's/.*net:\[//; s/\]//' |
			sort | uniq -c | awk '{ print $1 "x" $2 }')
		[ "$got" = "5x$want" ] || bad+=" $u:[$got] want 5x$want"
	done
}
: >"$rec"
logins a
is "$nfail" 0 "64 idle clients of the group: 50 concurrent logins all open"
in_own_ns
is "$bad" "" "... each session in its own user's namespace"

start_bg roothold "$PYTHON" "$T/hold.py" "$ctl" 64
check_within 20 "root holds 64 idle clients too" \
	grep -qx "held 64" "$roothold_out"
: >"$rec"
logins b
is "$nfail" 0 "... 50 concurrent logins still all open"
in_own_ns
is "$bad" "" "... each session in its own user's namespace"
stop_pid "$roothold_pid"
stop_pid "$monhold_pid"

# --- every slot of root's taken: the next one waits, it is not refused
start_bg full "$PYTHON" "$T/hold.py" "$ctl" "$ROOT_SLOTS" probe
check_within 30 "root's $ROOT_SLOTS slots all taken" \
	grep -q "^done" "$full_out"
is "$(grep '^extra:' "$full_out")" "extra: waiting" \
	"the next client of root waits (not told: too many clients)"
like "$(grep '^after one left:' "$full_out")" 'no such user' \
	"... and is served once a slot frees"
stop_pid "$full_pid"

# --- 40 squatted ports in a namespace: its answer is long, the login opens
ns0=$pre$u0
like "$(ask "$ctl" "provision $u0")" "^ok $u0 $ns0\$" "$ns0 is ready"
cat >"$T/squat.py" <<'PY'
import signal, socket, sys
held = []
for p in range(7100, 7100 + int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", p))
    s.listen(1)
    held.append(s)
print("squatting", len(held), flush=True)
signal.pause()
PY
start_bg squat ip netns exec "$ns0" "$PYTHON" "$T/squat.py" "$NSQ"
check_within 10 "$NSQ ports squatted in $ns0" \
	grep -qx "squatting $NSQ" "$squat_out"
write_conf sq
"$top_builddir/nsrelayctl" -s "$ctl" reload >"$T/reload.out" 2>&1
like "$(cat "$T/reload.out")" '^ok generation' "reload: $NSQ listeners more"
answer=
squatted() {
	answer=$(ask "$ctl" "provision $u0")
	[[ "$answer" == *"listeners 1/$((NSQ + 1)):"* ]]
}
check_within 20 "the answer counts the listeners that could not open" squatted
diag "answer: $answer"
cmp_ok "${#answer}" -lt 512 "... in fewer than 512 bytes"
like "$answer" "^ok $u0 $ns0 listeners 1/$((NSQ + 1)): sq 127\.0\.0\.1:71[0-9][0-9]: [^;]*; .* and $((NSQ - 3)) more\$" \
	"... the first reasons, then how many more"
: >"$rec"
check "$u0: a login opens its session" login "$u0"
is "$(last_ns "$u0")" "$(ns_inode "$ns0")" "... in its namespace"
stop_pid "$squat_pid"

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
