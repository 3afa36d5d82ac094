#!/bin/bash
# SPDX-License-Identifier: MIT
# proxy_protocol against real mail servers, each a private instance on
# loopback: Postfix (an smtpd port with smtpd_upstream_proxy_protocol =
# haproxy) and Dovecot (an imap-login listener with haproxy = yes).  Two
# namespaces nsrelayd provisioned, A and B, reach both through the relay;
# each server takes each namespace's own address as the client's, logs it,
# and applies its policy to it: Postfix relays for A (in mynetworks) and not
# for B, Dovecot lets each tenant's user log in only from its namespace
# (allow_nets).  v1 and v2 both; the smtp and imap checks (v2 LOCAL, v1 with
# the check's own addresses) keep the servers up; a service
# without proxy_protocol gets no greeting from the smtpd that waits for a
# header.  No mail leaves: every transport is discard.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
command -v postfix >/dev/null && command -v postconf >/dev/null ||
	skip_all "Postfix not installed (apt-get install postfix)"
: "${POSTFIX_DAEMONS:=$(postconf -dh daemon_directory)}"
[ -x "$POSTFIX_DAEMONS/master" ] ||
	skip_all "Postfix not installed (apt-get install postfix)"
command -v swaks >/dev/null || skip_all "swaks not installed (apt-get install swaks)"
command -v dovecot >/dev/null && command -v doveadm >/dev/null ||
	skip_all "Dovecot not installed (apt-get install dovecot-imapd)"
command -v jq >/dev/null || skip_all "jq not installed"
for u in postfix dovecot dovenull nobody; do
	id "$u" >/dev/null 2>&1 || skip_all "no user $u (the postfix and dovecot-core packages make them)"
done
getent group postdrop >/dev/null || skip_all "no group postdrop (postfix makes it)"
tap_init

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pool_claim B UB
pre="nspx-$$-"
ua=nspxa$$
ub=nspxb$$
user_add "$ua" $((UB + B))
user_add "$ub" $((UB + B + 1))
netns_adopt "$pre$ua"
netns_adopt "$pre$ub"
link_adopt "npx$B"
link_adopt "npx$((B + 1))"
A=$(pool_v4 "$B" 2)
Bq=$(pool_v4 $((B + 1)) 2)
nsa=$pre$ua
nsb=$pre$ub

# ------------------------------------------------------------ Postfix
# Its own config_directory, queue_directory and data_directory; the master
# runs in the foreground (master -s, as "postfix start-fg" does), started
# and stopped by its pid.  Only the services an smtpd, the queue manager and
# the discard transport need.
PF=$T/postfix
PFLOG=$PF/maillog
mkdir -p "$PF/etc" "$PF/spool" "$PF/data" && chown postfix: "$PF/data" ||
	bail "cannot make Postfix's directories"
pf_port=$(free_port)
cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
maillog_file_prefixes = $PF
maillog_file = $PFLOG
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = $A/32
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_upstream_proxy_timeout = 3s
default_transport = discard:
relay_transport = discard:
local_transport = discard:
virtual_transport = discard:
biff = no
EOF
cat >"$PF/etc/master.cf" <<EOF
127.0.0.1:$pf_port inet n - n - - smtpd
  -o smtpd_upstream_proxy_protocol=haproxy
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
postlog   unix-dgram n - n - 1 postlogd
EOF
# makes the queue's directories, owned by postfix
postfix -c "$PF/etc" check >"$PF/check.out" 2>&1 ||
	bail "postfix check failed: $(cat "$PF/check.out"; tail -3 "$PFLOG" 2>/dev/null)"
start_bg postfix "$POSTFIX_DAEMONS/master" -c "$PF/etc" -s
pf_up() { grep -q 'daemon started' "$PFLOG" && ss -Hltn "sport = :$pf_port" | grep -q .; }
wait_for 30 pf_up || bail "Postfix did not start: $(tail -5 "$PFLOG" 2>/dev/null; cat "$postfix_err")"
pass "Postfix on 127.0.0.1:$pf_port, PROXY header expected (haproxy)"

# ------------------------------------------------------------ Dovecot
# Its own base_dir, state_dir and log; a passwd-file with one user for each
# tenant, who may log in only from its namespace's address; mail as nobody.
DV=$T/dovecot
DVLOG=$DV/dovecot.log
mkdir -p "$DV/run" "$DV/state" "$DV/mail" && chown nobody: "$DV/mail" ||
	bail "cannot make Dovecot's directories"
dv_port=$(free_port)
cat >"$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = $DVLOG
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
auth_verbose = yes
auth_failure_delay = 0
haproxy_trusted_networks = 127.0.0.1
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DV/users
}
userdb {
  driver = static
  args = uid=nobody gid=$(id -gn nobody) home=$DV/mail/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
  inet_listener imap_haproxy {
    address = 127.0.0.1
    port = $dv_port
    haproxy = yes
  }
}
EOF
cat >"$DV/users" <<EOF
$ua:pw-a::::::allow_nets=$A/32
$ub:pw-b::::::allow_nets=$Bq/32
EOF
chmod 0644 "$DV/dovecot.conf" "$DV/users"
start_bg dovecot dovecot -F -c "$DV/dovecot.conf"
dv_up() { grep -q 'starting up' "$DVLOG" && ss -Hltn "sport = :$dv_port" | grep -q .; }
wait_for 30 dv_up || bail "Dovecot did not start: $(tail -5 "$DVLOG" 2>/dev/null; cat "$dovecot_err")"
pass "Dovecot on 127.0.0.1:$dv_port, haproxy = yes"

# ------------------------------------------------------------ nsrelayd
conf_begin "$T/mail.yaml" --control none --all "$pre*"
conf_text <<EOF
services:
  smtp1:
    listen: "127.0.0.1:25"
    upstream: "127.0.0.1:$pf_port"
    proxy_protocol: v1
    check: { protocol: smtp, interval: 300ms }
  smtp2:
    listen: "127.0.0.1:587"
    upstream: "127.0.0.1:$pf_port"
    proxy_protocol: v2
    check: { protocol: smtp, interval: 300ms }
  smtpoff:
    listen: "127.0.0.1:2525"
    upstream: "127.0.0.1:$pf_port"
  imap2:
    listen: "127.0.0.1:143"
    upstream: "127.0.0.1:$dv_port"
    proxy_protocol: v2
    check: { protocol: imap, interval: 300ms }
  imap1:
    listen: "127.0.0.1:1143"
    upstream: "127.0.0.1:$dv_port"
    proxy_protocol: v1
    check: { protocol: imap, interval: 300ms }
control:
  path: $T/control.sock
provision:
  users: [$ua, $ub]
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "npx%i"
EOF
start_daemon "$CONF"
for ns in "$nsa" "$nsb"; do
	check_within 20 "$ns is served" wait_listening "$ns" 127.0.0.1:1143 1 ||
		bail "nsrelayd does not serve $ns"
done

# ------------------------------------------------------------ SMTP
send() {	# send NS PORT: one message to x@example.test, swaks's transcript
	in_ns "$1" swaks --server "127.0.0.1:$2" --timeout 15 \
		--from y@example.test --to x@example.test \
		--helo "client.example.test" --header "Subject: from $1" 2>&1
}
queued() { sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$1"; }
logged() { grep -qF -- "$1" "$2"; }
sent_to() { grep -Eq -- "postfix/discard\[[0-9]+\]: $1: to=<x@example.test>.* status=sent" "$PFLOG"; }

for v in 1:25 2:587; do
	port=${v#*:}
	v=v${v%%:*}
	out=$(send "$nsa" "$port")
	qid=$(queued "$out")
	if [ -n "$qid" ]; then
		pass "$v: A's message is accepted (A's address is in mynetworks)"
	else
		fail "$v: A's message is accepted (A's address is in mynetworks)" "$out"
	fi
	check_within 10 "$v: Postfix logs A's address as the client: $qid: client=unknown[$A]" \
		logged "${qid:-none}: client=unknown[$A]" "$PFLOG"
	check_within 10 "$v: ... and discards the message" sent_to "${qid:-none}"
	out=$(send "$nsb" "$port")
	like "$out" "<\*\* +554 5\.7\.1 <x@example\.test>: Relay access denied" \
		"$v: B is refused relaying (B's address is not in mynetworks)"
	check_within 10 "$v: Postfix logs the refusal for B's address" \
		logged "reject: RCPT from unknown[$Bq]: 554 5.7.1" "$PFLOG"
done
# the v1 check sends its own connection's addresses (Postfix 3.7 answers
# "PROXY UNKNOWN" with a 421, which would take it out of service), v2 LOCAL
smtp_up() { "$NSRELAYCTL" -s "$T/control.sock" stats --json |
	jq -e '[.services[] | select(.name == "smtp1" or .name == "smtp2") | .upstreams[] | select(.checks >= 5 and .state == "up")] | length == 2' >/dev/null; }
check_within 10 "the smtp checks, v1 (the check's addresses) and v2 (LOCAL), keep Postfix up" smtp_up
check "Postfix logs the checks as from 127.0.0.1" logged "connect from unknown[127.0.0.1]" "$PFLOG"

out=$(send "$nsa" 2525)
if grep -q 'Ok: queued' <<<"$out"; then
	fail "no proxy_protocol: Postfix, waiting for a header, does not take the message" "$out"
else
	pass "no proxy_protocol: Postfix, waiting for a header, does not take the message"
fi
check_within 10 "... and says so in its log" logged "haproxy read: " "$PFLOG"

# ------------------------------------------------------------ IMAP
cat >"$T/imap.py" <<'EOF'
import imaplib, os, sys, time
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
hold = sys.argv[4] if len(sys.argv) > 4 else None
try:
    m = imaplib.IMAP4("127.0.0.1", port, timeout=15)
    typ, _ = m.login(user, pw)
    m.select("INBOX")
except Exception as e:
    print("FAIL", e)
    sys.exit(1)
print(typ, flush=True)
if hold:
    end = time.monotonic() + 30
    while not os.path.exists(hold) and time.monotonic() < end:
        time.sleep(0.05)
m.logout()
EOF
login() {	# login NS PORT USER PASSWORD
	in_ns "$1" "$PYTHON" "$T/imap.py" "$2" "$3" "$4" 2>&1
}
for v in 2:143 1:1143; do
	port=${v#*:}
	v=v${v%%:*}
	is "$(login "$nsa" "$port" "$ua" pw-a)" OK "$v: A's user logs in from A"
	check_within 10 "$v: Dovecot logs A's address: Login: user=<$ua>, ..., rip=$A" \
		grep -Eq "imap-login: Info: Login: user=<$ua>, method=PLAIN, rip=$A, lip=127\.0\.0\.1" "$DVLOG"
	is "$(login "$nsb" "$port" "$ub" pw-b)" OK "$v: B's user logs in from B"
	check_within 10 "$v: Dovecot logs B's address" \
		grep -Eq "imap-login: Info: Login: user=<$ub>, method=PLAIN, rip=$Bq, lip=127\.0\.0\.1" "$DVLOG"
	like "$(login "$nsb" "$port" "$ua" pw-a)" "^FAIL .*AUTHENTICATIONFAILED" \
		"$v: A's user does not log in from B"
	check_within 10 "$v: ... refused by allow_nets for B's address" \
		grep -Fq "passwd-file($ua,$Bq,<" "$DVLOG"
done

start_bg held in_ns "$nsa" "$PYTHON" "$T/imap.py" 143 "$ua" pw-a "$T/release"
check_within 15 "a session from A is held open" grep -qx OK "$held_out"
who_a() { doveadm -c "$DV/dovecot.conf" who 2>&1 | grep -E "^$ua +1 +imap .*\($A\)"; }
check_within 10 "doveadm who shows A's user from A's address" who_a
: >"$T/release"
check_bg 20 held "... and the session ends with LOGOUT"

imap_up() { "$NSRELAYCTL" -s "$T/control.sock" stats --json |
	jq -e '[.services[] | select(.name == "imap1" or .name == "imap2") | .upstreams[] | select(.checks >= 5 and .state == "up")] | length == 2' >/dev/null; }
check_within 10 "the imap checks, v1 and v2 (LOCAL), keep Dovecot up" imap_up

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
stop_pid "$dovecot_pid"
stop_pid "$postfix_pid"
check "Dovecot stopped" _gone "$dovecot_pid"
check "Postfix stopped" _gone "$postfix_pid"
done_testing
