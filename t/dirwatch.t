#!/bin/bash
# SPDX-License-Identifier: MIT
# Discovery survives the namespace directory going away: with privileges
# dropped (the daemon cannot create the directory again itself), `rm -r` of
# the directory closes the listeners of the namespaces that were in it; once
# an admin creates it again, namespaces made there are discovered and served
# without SIGHUP, including one made well after the directory came back (the
# directory is watched again, not only rescanned once).
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v unshare >/dev/null || skip_all "unshare not found"
command -v nsenter >/dev/null || skip_all "nsenter not found"

dir=$T/netns
mkdir -m 0755 "$dir" || bail "mkdir $dir"
port=$(peer freeport) || bail "freeport failed"
start_server echo echo

ns_make() { netns_file "$dir/$1"; }	# ns_make NAME: in $dir
in_ns_file() { local n=$1; shift; nsenter --net="$dir/$n" "$PYTHON" "$PEER" "$@"; }

conf_begin "$T/dirwatch.yaml" --dir "$dir" --all "*"
conf_service echo "127.0.0.1:$echo_port" "127.0.0.1:$port"
daemon_up -d "nsrelayd started" "$CONF"
is "$(grep -c 'running as nobody' "$DLOG")" 1 "privileges dropped (user nobody)"
ns_make a
check_within 10 "a namespace made in the directory is served" \
	in_ns_file a echo --port "$port" --bytes 4KiB --timeout 2

# --- the directory goes
umount "$dir/a" || bail "umount $dir/a"
rm -r "$dir" || bail "rm -r $dir"
away() { grep -q "$dir went away" "$DLOG"; }
check_within 10 "rm -r of the directory is noticed" away
gone() { grep -q "ns a: namespace gone" "$DLOG"; }
check_within 10 "... and the listeners of its namespace are closed" gone
check "the daemon did not re-create the directory" test ! -e "$dir"
daemon_alive || bail "nsrelayd exited when its directory went"

# --- and comes back, made by an admin; no SIGHUP from here on
mkdir -m 0755 "$dir" || bail "mkdir $dir"
again() { grep -q "watching $dir again" "$DLOG"; }
check_within 10 "the re-created directory is watched again" again
ns_make b
check_within 10 "a namespace made in it is discovered and served" \
	in_ns_file b echo --port "$port" --bytes 4KiB --timeout 2
check "... in that namespace" peer placement --pid "$DPID" --netns-dir "$dir" \
	--ns b --expect "b=127.0.0.1:$port"
# a later one: only the watch (not the rescan made when the directory came
# back) can see it
ns_make c
check_within 10 "one made later is discovered too (the watch is live)" \
	in_ns_file c echo --port "$port" --bytes 4KiB --timeout 2
umount "$dir/b" && rm -f "$dir/b"
b_gone() { grep -q "ns b: namespace gone" "$DLOG"; }
check_within 10 "one deleted is let go (the watch reports deletions)" b_gone
check "every listener where it should be" peer placement --pid "$DPID" \
	--netns-dir "$dir" --ns c --expect "c=127.0.0.1:$port"
is "$(log_count 'SIGHUP')" 0 "no SIGHUP was needed"

# --- twice in a row: a second rm -r and mkdir work as the first
umount "$dir/c" && rm -r "$dir"
check_within 10 "a second rm -r is noticed" bash -c "[ \$(grep -c '$dir went away' '$DLOG') -ge 2 ]"
mkdir -m 0755 "$dir" || bail "mkdir $dir"
ns_make d
check_within 10 "... and a namespace made after the second mkdir is served" \
	in_ns_file d echo --port "$port" --bytes 4KiB --timeout 2
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
