#!/bin/bash
# SPDX-License-Identifier: MIT
# Live discovery: namespaces added with `ip netns add` while nsrelayd runs
# are served without a signal; `ip netns del` closes their listeners (none is
# left holding the dead namespace) while a connection already open in it
# keeps working; a namespace deleted and re-created under the same name is
# served in the new namespace.  Only names matching namespaces.match count.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_reserve N1
netns_reserve N2
netns_new OTHER
prefix=${N1%-*}			# nsrt-PID
glob="$prefix-[12]"		# N1 and N2 (nsrt-PID-1, -2), not OTHER (-3)
case $N1$N2 in "$prefix-1$prefix-2") ;; *) bail "unexpected names $N1 $N2";; esac

start_server echo echo
conf_begin "$T/discovery.yaml" --all "$glob"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000 "[::1]:7000"
daemon_up -d "nsrelayd started" "$CONF"

# --- appear: no signal sent
netns_create "$N1"
check_within 10 "a namespace added while running is served (no signal)" \
	peer_in "$N1" echo --port 7000 --bytes 64KiB --timeout 2
check "... over IPv6 too" peer_in "$N1" echo --host ::1 --port 7000 --bytes 64KiB
netns_create "$N2"
check_within 10 "a second one too" \
	peer_in "$N2" echo --port 7000 --bytes 4KiB --timeout 2
check "listeners only in matching namespaces (none in $OTHER)" \
	daemon_placement "$N1" "$N2" "$N1=127.0.0.1:7000" "$N2=127.0.0.1:7000"

# --- vanish: an open connection keeps working, the listeners go
conn_re="ns $N1: echo: connection .*upstream connected"
n0=$(log_count "$conn_re")
start_bg chat ip netns exec "$N1" "$PYTHON" "$PEER" chatter --port 7000 \
	--count 40 --interval 0.1
conn_seen() { [ "$(log_count "$conn_re")" -gt "$n0" ]; }
wait_for 10 conn_seen || diag "no connection logged"
ip netns del "$N1"
gone_logged() { grep -q "ns $N1: namespace gone" "$DLOG"; }
check_within 10 "ip netns del: nsrelayd lets the namespace go" gone_logged
if _is_ours "$chat_pid"; then
	pass "the connection was still open when the namespace went"
else
	fail "the connection was still open when the namespace went"
fi
# the probe itself must succeed: every listener of the daemon is found in
# N2 (a listener in any other namespace, the deleted one included, or a
# probe that cannot look, fails)
no_old_listener() {
	daemon_placement "$N2" "$N2=127.0.0.1:7000" "$N2=[::1]:7000"
}
check_within 10 "no listener left in the deleted namespace" no_old_listener
check_bg 15 chat "the open connection kept working until it closed"
check "the other namespace is still served" \
	peer_in "$N2" echo --port 7000 --bytes 64KiB

# --- re-created under the same name: a new namespace, served anew (the
# kernel may hand the freed nsfs inode number to it: nsrelayd held no socket
# in the old one, or the number could not have been reused)
netns_create "$N1"
check_within 10 "the re-created namespace is served" \
	peer_in "$N1" echo --port 7000 --bytes 64KiB --timeout 2
check "its listeners are in the new namespace" \
	daemon_placement "$N1" "$N2" "$N1=127.0.0.1:7000" "$N1=[::1]:7000"

# --- churn: quick add/del cycles of a matching name
ip netns del "$N1"
for i in $(seq 30); do
	ip netns add "$N1" && ip -n "$N1" link set lo up && ip netns del "$N1"
done
netns_create "$N1"
daemon_alive || bail "nsrelayd died during add/del churn"
check_within 10 "served after 30 add/del cycles" \
	peer_in "$N1" echo --port 7000 --bytes 4KiB --timeout 2
check "every listener in its namespace after the churn" \
	daemon_placement "$N1" "$N2" "$N1=127.0.0.1:7000" "$N1=[::1]:7000" \
	"$N2=127.0.0.1:7000" "$N2=[::1]:7000"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
