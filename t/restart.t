#!/bin/bash
# SPDX-License-Identifier: MIT
# State that survives a restart: a user provisioned on request (not in the
# config) is remembered across a SIGKILL of the daemon.  The restarted
# daemon lists the user in the hosts file again (written anew: the old
# file is removed before the restart), keeps listing it when another user
# is provisioned, serves its namespace, and its link monitor cares for it:
# the user's host veth deleted after the restart comes back.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v socat >/dev/null || skip_all "socat not found"
command -v useradd >/dev/null || skip_all "useradd not found"

# two throwaway users; their indexes and uids (pool_claim) are this
# test's alone
pool_claim I0 UB
U0=$((UB + I0))
pre="hxr-$$-"
users=("hxr$$a" "hxr$$b")
for k in 0 1; do
	user_add "${users[k]}" $((U0 + k))
	netns_adopt "$pre${users[k]}"
	link_adopt "hxr$((I0 + k))"
done
A=${users[0]} B=${users[1]}
IA=$I0
v4() { echo "100.$((64 + $1 / 256)).$(($1 % 256)).$2"; }

ctl=$T/control.sock
hosts=$T/hosts
start_server echo echo
conf_begin "$T/restart.yaml" --all "$pre*"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_text <<EOF
provision:
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "hxr%i"
  control: $ctl
  hosts_file: $hosts
  domain: test.example
EOF
ask() { echo "$1" | timeout 30 socat -t 30 - "UNIX-CONNECT:$ctl"; }
listed() { grep -qx "$(v4 "$2" 2) $1.test.example" "$hosts"; }

daemon_up -d "nsrelayd started" "$CONF"
is "$(ask "provision $A")" "ok $A $pre$A" "$A provisioned on request"
check_within 5 "the hosts file lists $A" listed "$A" "$IA"
check "$A's namespace is served" \
	peer_in "$pre$A" echo --port 7000 --bytes 4KiB --timeout 2

# --- SIGKILL: no chance to write anything on the way out
kill -KILL "$DPID"
wait_for 10 _gone "$DPID" || bail "nsrelayd survived SIGKILL"
wait "$DPID" 2>/dev/null
rm -f "$hosts"
ifidx() { ip -j link show "$1" 2>/dev/null | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["ifindex"])'; }
idx_before=$(ifidx "hxr$IA")
start_daemon "$CONF"
again() { grep -q "ns $pre$A: provisioned for $A" "$DLOG"; }
check_within 20 "restarted: $A is provisioned again (remembered)" again
check_within 10 "the hosts file lists $A again" listed "$A" "$IA"
is "$(ifidx "hxr$IA")" "$idx_before" "... with nothing re-created (same host veth)"
check_within 10 "$A's namespace is served after the restart" \
	peer_in "$pre$A" echo --port 7000 --bytes 4KiB --timeout 2

is "$(ask "provision $B")" "ok $B $pre$B" "another user provisioned after the restart"
both() { listed "$A" "$IA" && listed "$B" $((I0 + 1)); }
check_within 5 "the hosts file lists both" both

# --- the link monitor cares for the remembered user
ip link del "hxr$IA" || bail "ip link del hxr$IA"
back() { ip link show "hxr$IA" >/dev/null 2>&1; }
check_within 15 "$A's deleted host veth comes back" back
check_within 10 "... and the namespace is served over it again" \
	peer_in "$pre$A" echo --port 7000 --bytes 4KiB --timeout 2
start_server inside -n "$pre$A" echo --host "$(v4 "$IA" 2)"
check "... and the host reaches it over the veth" \
	peer echo --host "$(v4 "$IA" 2)" --port "$inside_port" --bytes 4KiB --timeout 2
stop_pid "$inside_pid"

# --- deprovisioned users are forgotten across a restart too
is "$(ask "deprovision $A")" "ok $A $pre$A" "deprovision $A"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
start_daemon "$CONF"
b_again() { grep -q "ns $pre$B: provisioned for $B" "$DLOG"; }
check_within 20 "restarted again: $B is remembered" b_again
check "$A, deprovisioned, is not" bash -c "! grep -q 'provisioned for $A' '$DLOG' && ! ip netns list | grep -qw '$pre$A'"
is "$(ask "deprovision $B")" "ok $B $pre$B" "deprovision $B"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
