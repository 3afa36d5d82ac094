#!/bin/bash
# SPDX-License-Identifier: MIT
# pam_nsrelay through libpam (pamtester, a throwaway /etc/pam.d service
# whose session stack is pam_nsrelay then pam_exec recording the session's
# network namespace): a provisioned user's session lands in its namespace;
# a user without one gets it provisioned by the login; root and users below
# min_uid stay on the host; the daemon down denies (fail=closed) or lets
# through on the host (fail=open); a silent daemon times out; an answer
# naming another user or a file that is not a namespace is refused; 50
# concurrent logins of 10 users each land in their own namespace, each
# made once.  Prints the cost of a login whose namespace exists.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v pamtester >/dev/null || skip_all "pamtester not found"
command -v useradd >/dev/null || skip_all "useradd not found"
. "$top_srcdir/t/pam-lib.sh"
test_cleanup() { pam_cleanup; }

NU=10
pool_claim I0 UB
pre="nsrp-$$-"
users=()
for ((i = 0; i < NU; i++)); do
	u="nsrp$$u$i"
	users+=("$u")
	pam_user_add "$u" $((UB + I0 + i))
	netns_adopt "$pre$u"
	link_adopt "np$((I0 + i))"
done
u0=${users[0]} u1=${users[1]}
ctl=$T/control.sock
rec=$T/rec
svc="nsrt-pam-$$"

cat >"$T/record.sh" <<EOF
#!/bin/sh
[ "\$PAM_TYPE" = open_session ] || exit 0
echo "\$PAM_USER \$(readlink /proc/self/ns/net)" >>"$rec"
EOF
chmod 0755 "$T/record.sh"

service() {	# service NAME MODULE-OPTIONS...
	local name=$1
	shift
	pam_service "$name" <<EOF
auth     required pam_permit.so
account  required pam_permit.so
session  required $PAM_MODULE $*
session  required pam_exec.so quiet $T/record.sh
EOF
}
service "$svc" socket="$ctl" min_uid=1000
service "$svc-open" socket="$ctl" fail=open
service "$svc-uid0" socket="$ctl" min_uid=0
service "$svc-skip" socket="$ctl" min_uid=4294967294
pam_service "$svc-none" <<EOF
auth     required pam_permit.so
account  required pam_permit.so
session  required pam_exec.so quiet $T/record.sh
EOF

login() {	# login SERVICE USER: open and close a session
	"${PAM_ENV[@]}" pamtester "$1" "$2" open_session close_session
}
last_ns() {	# last_ns USER: the inode of USER's last recorded session
	local l
	l=$(grep "^$1 " "$rec" | tail -n1)
	l=${l##*net:[}
	echo "${l%]}"
}
host_ns=$(net_inode)

start_server echo echo
conf=$T/pam.yaml
cat >"$conf" <<EOF
user: nobody
namespaces:
  all: true
  match: "$pre*"
services:
  echo:
    listen: ["127.0.0.1:7000"]
    upstream: "127.0.0.1:$echo_port"
provision:
  users:
    - $u0
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "np%i"
  control: $ctl
EOF
chmod 0644 "$conf"
start_daemon "$conf"
provisioned() { grep -q "ns $pre$1: provisioned for $1" "$DLOG"; }
check_within 20 "$u0's namespace provisioned at start" provisioned "$u0"

# --- a provisioned user
check "$u0: the session opens" login "$svc" "$u0"
is "$(last_ns "$u0")" "$(ns_inode "$pre$u0")" \
	"$u0: the session is in /run/netns/$pre$u0"

# --- a user whose namespace does not exist yet
ok "$([ ! -e "/run/netns/$pre$u1" ]; echo $?)" "$u1 has no namespace yet"
check "$u1: the session opens" login "$svc" "$u1"
ok "$([ -e "/run/netns/$pre$u1" ]; echo $?)" "... its namespace was provisioned by the login"
is "$(last_ns "$u1")" "$(ns_inode "$pre$u1")" \
	"... and the session is in it"
check "... where the host's service answers on 127.0.0.1:7000" \
	peer_in "$pre$u1" echo --port 7000 --bytes 4KiB --timeout 2

# --- root and system users stay on the host
check "root: the session opens" login "$svc" root
is "$(last_ns root)" "$host_ns" "root stays in the host's namespace"
check "root, min_uid=0: the session opens" login "$svc-uid0" root
is "$(last_ns root)" "$host_ns" "... root is skipped whatever min_uid says"
if getent passwd daemon >/dev/null; then
	check "daemon (uid below min_uid): the session opens" login "$svc" daemon
	is "$(last_ns daemon)" "$host_ns" "... in the host's namespace"
fi

# --- the login cost when the namespace exists: pam_open_session() timed
# in one process (libpam through ctypes), for a stack of pam_nsrelay alone,
# entering the namespace, and skipping the user (module loaded, options,
# getpwnam: the part that is not the daemon's)
pam_service "$svc-only" <<EOF
session  required $PAM_MODULE socket=$ctl
EOF
pam_service "$svc-only-skip" <<EOF
session  required $PAM_MODULE socket=$ctl min_uid=4294967294
EOF
cat >"$T/time.py" <<'PY'
import ctypes, os, sys, time
svc, user, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
pam = ctypes.CDLL("libpam.so.0")
class Conv(ctypes.Structure):
    _fields_ = [("conv", ctypes.c_void_p), ("appdata", ctypes.c_void_p)]
conv, h = Conv(None, None), ctypes.c_void_p()
if pam.pam_start(svc.encode(), user.encode(), ctypes.byref(conv), ctypes.byref(h)):
    sys.exit("pam_start failed")
best, total = None, 0.0
for _ in range(n):
    t = time.perf_counter()
    r = pam.pam_open_session(h, 0)
    t = time.perf_counter() - t
    if r:
        sys.exit("pam_open_session: %d" % r)
    pam.pam_close_session(h, 0)
    total += t
    best = t if best is None or t < best else best
pam.pam_end(h, 0)
print("%.3f %.3f %s" % (total * 1000 / n, best * 1000, os.readlink("/proc/self/ns/net")))
PY
t_enter=$("${PAM_ENV[@]}" "$PYTHON" "$T/time.py" "$svc-only" "$u0" 200)
t_skip=$("${PAM_ENV[@]}" "$PYTHON" "$T/time.py" "$svc-only-skip" "$u0" 200)
diag "pam_open_session, namespace exists (mean / best of 200, ms):" \
	"  pam_nsrelay entering it:  ${t_enter% *}" \
	"  pam_nsrelay skipping the user: ${t_skip% *}"
is "${t_enter##*net:[}" "$(ns_inode "$pre$u0")]" "the timed sessions were in $u0's namespace"
rt=$("$PYTHON" - "$ctl" "$u0" <<'PY'
import socket, sys, time
path, user = sys.argv[1:]
n, t = 200, time.perf_counter()
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"provision %s\n" % user.encode())
    s.shutdown(socket.SHUT_WR)
    while not s.recv(256).endswith(b"\n"):
        pass
    s.close()
print("%.3f" % ((time.perf_counter() - t) * 1000 / n))
PY
)
diag "control socket round trip for a ready namespace: $rt ms (mean of 200)"

# --- forged or odd answers: a fake daemon on a root-owned socket
cat >"$T/fake.py" <<'PY'
import os, signal, socket, sys
path, answer = sys.argv[1:]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o600)
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    data = b""
    while not data.endswith(b"\n"):
        b = c.recv(256)
        if not b:
            break
        data += b
    if answer == "-":
        signal.pause()
    c.sendall(answer.encode() + b"\n")
    c.close()
PY
fake() {	# fake NAME ANSWER: a control socket answering ANSWER ("-": never)
	start_bg "$1" "$PYTHON" "$T/fake.py" "$T/$1.sock" "$2"
	wait_for 10 _has_line "$T/$1.out" || bail "fake daemon $1 did not start"
}
mkdir -m 0755 "$T/nsdir" && : >"$T/nsdir/plain"
fake silent -
fake other "ok root $pre$u0"
fake plain "ok $u0 plain"
fake refuses "error: no such user"
svc_fake() {	# svc_fake NAME SOCKET-NAME
	service "$svc-$1" socket="$T/$2.sock" dir="$T/nsdir" timeout=1
}
svc_fake silent silent; svc_fake other other; svc_fake plain plain
svc_fake refuses refuses
t0=$(_now_us)
login "$svc-silent" "$u0" >/dev/null 2>&1
st=$?
t1=$(_now_us)
ok "$([ "$st" != 0 ]; echo $?)" "a daemon that does not answer: denied"
cmp_ok $(( (t1 - t0) / 1000 )) -lt 3000 "... within the timeout (1 s)"
ok "$(login "$svc-other" "$u0" >/dev/null 2>&1; [ $? != 0 ]; echo $?)" \
	"an answer for another user: denied"
ok "$(login "$svc-plain" "$u0" >/dev/null 2>&1; [ $? != 0 ]; echo $?)" \
	"an answer naming a file that is not a namespace: denied"
ok "$(login "$svc-refuses" "$u0" >/dev/null 2>&1; [ $? != 0 ]; echo $?)" \
	"the daemon's error: denied"
stop_pid "$silent_pid"; stop_pid "$other_pid"; stop_pid "$plain_pid"
stop_pid "$refuses_pid"

# --- 50 concurrent logins of 10 users (u0, u1 ready; the others not)
: >"$rec"
pids=()
for ((k = 0; k < 5; k++)); do
	for u in "${users[@]}"; do
		login "$svc" "$u" >"$T/c.$u.$k" 2>&1 &
		pids+=($!)
	done
done
nfail=0
for p in "${pids[@]}"; do wait "$p" || nfail=$((nfail + 1)); done
is "$nfail" 0 "50 concurrent logins: all opened"
bad=
for u in "${users[@]}"; do
	want=$(ns_inode "$pre$u") || { bad+=" $u:no-namespace"; continue; }
	got=$(grep "^$u " "$rec" | sed 's/.*net:\[//; s/\]//' | sort | uniq -c |
		awk '{ print $1 "x" $2 }')
	[ "$got" = "5x$want" ] || bad+=" $u:[$got] want 5x$want"
done
is "$bad" "" "... each session in its own user's namespace"
# a namespace made twice would be a second namespace of that name, served
# a second time: one "listening" per namespace
made=0
for u in "${users[@]}"; do
	made=$((made + $(log_count "ns $pre$u: echo: listening on")))
done
is "$made" "$NU" "... each namespace provisioned and served once"
is "$(ip netns list | awk '{ print $1 }' | grep -c "^$pre")" "$NU" \
	"... $NU namespaces in all"

# --- the daemon down
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
: >"$rec"
login "$svc" "$u1" >"$T/closed.out" 2>&1
ok "$([ $? != 0 ]; echo $?)" "daemon down, fail=closed: the session is denied"
login "$svc-open" "$u1" >"$T/open.out" 2>&1
is "$?" 0 "daemon down, fail=open: the session opens"
is "$(last_ns "$u1")" "$host_ns" "... in the host's namespace"
check "daemon down: root still logs in" login "$svc" root
done_testing
