#!/bin/bash
# SPDX-License-Identifier: MIT
# pam_nsrelay with a real client: a private sshd (its own config, host key,
# port on 127.0.0.1 and PAM service) and key-only login of a throwaway
# user.  The first login provisions the user's namespace and the remote
# command runs in it, where 127.0.0.1:7000 reaches a host service through
# nsrelayd; a second login lands in the same namespace; the daemon down
# denies the session (fail=closed).
#
# The PAM service: OpenSSH names it after the program (__progname), so the
# sshd started here is a symlink called nsrt-ssh-PID with its own file in
# /etc/pam.d; the host's sshd service and /etc/pam.d/sshd are not touched.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
for c in sshd ssh ssh-keygen useradd; do
	command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] ||
		skip_all "$c not found"
done
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
. "$top_srcdir/t/pam-lib.sh"
made_run_sshd=
test_cleanup() {
	pam_cleanup
	[ -z "$made_run_sshd" ] || rmdir /run/sshd 2>/dev/null
}

pool_claim I0 UB
user="nsrs$$"
pre="nsrs-$$-"
home=$T/home
netns_adopt "$pre$user"
link_adopt "np$I0"
mkdir -p "$home"
pam_user_add "$user" $((UB + I0)) "$home" /bin/bash
chown "$user" "$home"
ctl=$T/control.sock
svc="nsrt-ssh-$$"

# --- the daemon, a host service the namespace reaches on 127.0.0.1:7000
greeting="hello from the host $$"
start_server greet greet --text "$greeting"
conf=$T/ssh.yaml
cat >"$conf" <<EOF
user: nobody
namespaces:
  all: true
  match: "$pre*"
services:
  greet:
    listen: ["127.0.0.1:7000"]
    upstream: "127.0.0.1:$greet_port"
provision:
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "np%i"
  control: $ctl
EOF
chmod 0644 "$conf"
start_daemon "$conf"
wait_for 10 test -S "$ctl" || bail "no control socket"

# --- sshd: its own name (= PAM service), config, keys, port
mkdir -m 0700 "$T/ssh"
ssh-keygen -q -t ed25519 -N '' -C host -f "$T/ssh/host" || bail "ssh-keygen"
ssh-keygen -q -t ed25519 -N '' -C client -f "$T/ssh/id" || bail "ssh-keygen"
mkdir -m 0755 "$T/keys"
install -m 0644 "$T/ssh/id.pub" "$T/keys/$user"
mkdir -m 0755 "$T/sbin"
ln -s "$SSHD" "$T/sbin/$svc"
if [ ! -d /run/sshd ]; then	# the privilege separation directory
	mkdir -m 0755 /run/sshd && made_run_sshd=1
fi
pam_service "$svc" <<EOF
auth     required pam_permit.so
account  required pam_permit.so
session  required $PAM_MODULE socket=$ctl
EOF
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sshd_up() { ss -Hltn "sport = :$port" | grep -qF "127.0.0.1:$port "; }
for try in 1 2 3; do
	port=$(free_port)
	cat >"$T/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $T/ssh/host
PidFile none
UsePAM yes
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $T/keys/%u
StrictModes no
PermitRootLogin no
AllowUsers $user
X11Forwarding no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
EOF
	start_bg "sshd$try" "${PAM_ENV[@]}" "$T/sbin/$svc" -D -e -f "$T/sshd_config"
	wait_for 10 sshd_up && break
	stop_pid "$(eval echo "\$sshd${try}_pid")"
	[ "$try" = 3 ] && bail "sshd did not start: $(cat "$T/sshd$try.err")"
done
sshd_err=$T/sshd$try.err

login() {	# login COMMAND: run COMMAND as $user over ssh
	timeout 30 ssh -F /dev/null -i "$T/ssh/id" -o IdentitiesOnly=yes \
		-o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o ConnectTimeout=10 -p "$port" "$user@127.0.0.1" "$1"
}
remote='readlink /proc/self/ns/net; exec 3<>/dev/tcp/127.0.0.1/7000 && timeout 5 head -n1 <&3'

ok "$([ ! -e "/run/netns/$pre$user" ]; echo $?)" "$user has no namespace yet"
out=$(login "$remote" 2>"$T/ssh1.err")
st=$?
is "$st" 0 "ssh login and command" || diag "$(cat "$T/ssh1.err")" "$(tail -20 "$sshd_err")"
ok "$([ -e "/run/netns/$pre$user" ]; echo $?)" "the login provisioned $user's namespace"
want=$(ns_inode "$pre$user" 2>/dev/null)
is "$(sed -n 1p <<<"$out")" "net:[$want]" "the remote command runs in $user's namespace"
is "$(sed -n 2p <<<"$out")" "$greeting" \
	"... where 127.0.0.1:7000 reaches the host's service through nsrelayd"
like "$(grep -c "session opened for user $user\|Accepted publickey for $user" "$sshd_err")" \
	'^[1-9]' "sshd logged the key login"

out=$(login 'readlink /proc/self/ns/net' 2>"$T/ssh2.err")
is "$out" "net:[$want]" "a second login: the same namespace" ||
	diag "$(cat "$T/ssh2.err")"

# --- the daemon down: fail=closed keeps the user out
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
out=$(login 'readlink /proc/self/ns/net' 2>"$T/ssh3.err")
st=$?
# sshd runs no command when pam_open_session failed: it shows the
# module's message and exits 254
ok "$([ "$st" != 0 ] && ! grep -q 'net:' <<<"$out"; echo $?)" \
	"daemon down: the session is denied (fail=closed)" ||
	diag "status $st, output: $out"
like "$out" "network namespace is not available" "... and the user is told why"
done_testing
