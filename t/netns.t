#!/bin/bash
# SPDX-License-Identifier: MIT
# Namespaces: one missing at start, one with the port squatted; the good one
# is served meanwhile; after `ip netns add` and the squatter's exit both are
# served.  SIGHUP retries at once what the backoff would retry much later.  Placement: every listener lives in its namespace (checked
# on the daemon's own sockets with pidfd_getfd + SIOCGSKNS), every thread of
# the daemon stays in the host's namespace, and none listens on the host.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NSA	# good
netns_new NSB	# 127.0.0.1:7000 squatted
netns_reserve NSC	# missing at start

start_server echo echo
start_server squat -n "$NSB" echo --host 127.0.0.1 --port 7000
is "$squat_port" 7000 "squatter holds 127.0.0.1:7000 in $NSB"

conf_begin "$T/netns.yaml" "$NSA" "$NSB" "$NSC"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000 "[::1]:7000"
start_daemon "$CONF"

if wait_listeners "$NSA" 127.0.0.1:7000 "[::1]:7000"; then
	pass "listeners up in the good namespace"
else
	fail "listeners up in the good namespace" "not listening:$MISSING"
fi
daemon_alive || bail "nsrelayd exited at startup"
check "echo over IPv4 in the good namespace" \
	peer_in "$NSA" echo --port 7000 --bytes 64KiB
check "echo over IPv6 in the good namespace" \
	peer_in "$NSA" echo --host ::1 --port 7000 --bytes 64KiB

if wait_listeners "$NSB" "[::1]:7000"; then
	check "the unsquatted address in $NSB is served" \
		peer_in "$NSB" echo --host ::1 --port 7000 --bytes 64KiB
else
	fail "the unsquatted address in $NSB is served" "no listener on [::1]:7000"
fi

missing_logged() { grep -i -- "$NSC" "$DLOG" | grep -qi retrying; }
if wait_for 10 missing_logged; then
	pass "log: the missing namespace, retrying"
else
	fail "log: the missing namespace, retrying" \
		"no line with '$NSC' and 'retrying'"
fi
inuse_logged() { grep -i 'address already in use' "$DLOG" | grep -qi retrying; }
if wait_for 10 inuse_logged; then
	pass "log: address already in use, retrying"
else
	fail "log: address already in use, retrying"
fi

# Repair both: create the namespace (seen by inotify), let the squatter go.
netns_create "$NSC"
stop_pid "$squat_pid"
check_within 10 "namespace created after start is served (no signal)" \
	peer_in "$NSC" echo --port 7000 --bytes 4KiB --timeout 2
check "... over IPv6 too" peer_in "$NSC" echo --host ::1 --port 7000 \
	--bytes 64KiB
check_within 10 "squatted address served once released (bind_retry_max 1s)" \
	peer_in "$NSB" echo --port 7000 --bytes 4KiB --timeout 2
daemon_alive || bail "nsrelayd exited"
check "echo over IPv4 in $NSB" peer_in "$NSB" echo --port 7000 --bytes 1MiB

# Placement.
args=()
for ns in "$NSA" "$NSB" "$NSC"; do
	args+=("$ns" "$ns=127.0.0.1:7000" "$ns=[::1]:7000")
done
wait_listening "$NSC" "[::1]:7000"
check "every listener of the daemon is inside its namespace (SIOCGSKNS)" \
	daemon_placement "${args[@]}"
check "every thread of the daemon is in the host's network namespace" \
	daemon_placement --threads "$NSA" "$NSB" "$NSC"
host=$(ss -Hltnp 2>&1 | grep -F "pid=$DPID,")
is "$host" "" "no daemon listener in the host's namespace"

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"

# SIGHUP: a namespace that appears where inotify does not see it, while its
# listeners' retry backoff is long, is served at once on SIGHUP.  In a
# directory of its own (no other test's namespace comes and goes there), the
# name first appears as an empty file, as `ip netns add` creates it: a
# listener that fails on a file that is not yet a namespace is retried from
# 25 ms, doubling (bind_retry_max 1h).  Once the file has been failing for
# BACKOFF s, the next retry is BACKOFF s or more away; then a namespace is
# mounted on the file (a mount is no inotify event) and SIGHUP must bring
# the listeners up within BOUND s, far sooner.
BACKOFF=7 BOUND=3	# retries at 3.2 s, 6.4 s, then 12.8 s: 5.8 s after the mount
dir=$T/netns
mkdir -m 0755 "$dir"
netns_new NSH	# the namespace mounted later under another name
netns_reserve NSD	# its name in $dir (removed at exit: nothing there)
conf_begin "$T/netns-hup.yaml" --retry 1h --dir "$dir" "$NSD"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000 "[::1]:7000"
start_daemon "$CONF"
nsd_logged() { grep -- "$NSD" "$DLOG" | grep -qi retrying; }
check_within 10 "log: $NSD missing, retrying" nsd_logged
: >"$dir/$NSD"
mount_adopt "$dir/$NSD"
t0=$(_now_us)
sleep "$BACKOFF"	# the backoff grows: this window is the scenario itself
mount --bind "/run/netns/$NSH" "$dir/$NSD" || bail "mount --bind failed"
t1=$(_now_us)
kill -HUP "$DPID"
if wait_listeners -t "$BOUND" "$NSH" 127.0.0.1:7000 "[::1]:7000"; then
	pass "SIGHUP: listeners up within $BOUND s, not after the backoff"
else
	fail "SIGHUP: listeners up within $BOUND s, not after the backoff" \
		"not listening:$MISSING" \
		"file failing for $(( (t1 - t0) / 1000 )) ms before the mount"
fi
check "... and served" peer_in "$NSH" echo --port 7000 --bytes 64KiB
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
umount "$dir/$NSD"
done_testing
