#!/bin/bash
# SPDX-License-Identifier: MIT
# Hostile files in the namespace directory (namespaces.all): whatever a user
# who can write there plants, the daemon opens no listener in its own (host)
# namespace, serves a namespace once however many names it has, logs each
# refusal once, and does not retry what can never work; a proper namespace
# in the same directory keeps being served all along.
#   - symbolic links to /proc/self/ns/net (the daemon's own), to
#     /proc/DAEMON/ns/net and to a real namespace file: refused, logged once;
#   - a bind mount of the host's namespace (this shell's /proc/PID/ns/net):
#     refused by identity, logged once;
#   - a second name of a served namespace (a bind mount of its file): served
#     once, the duplicate logged once, no EADDRINUSE retries;
#   - a regular file that is not a namespace: retried only for the window in
#     which `ip netns add` mounts one, then logged once at warning level and
#     never opened again.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v unshare >/dev/null || skip_all "unshare not found"
command -v nsenter >/dev/null || skip_all "nsenter not found"

dir=$T/netns
mkdir -m 0755 "$dir" || bail "mkdir $dir"
port=$(peer freeport) || bail "freeport failed"
start_server echo echo

mount_ns() {	# mount_ns SOURCE NAME: bind-mount SOURCE on $dir/NAME
	: >"$dir/$2" || bail "cannot create $dir/$2"
	mount_adopt "$dir/$2"
	mount --bind "$1" "$dir/$2" || bail "mount --bind $1 $dir/$2 failed"
}
# the proper namespace, known by no other name than $dir/good (other
# processes open every file of /run/netns: only the daemon opens this one)
: >"$dir/good" || bail "cannot create $dir/good"
mount_adopt "$dir/good"
unshare --net="$dir/good" ip link set lo up || bail "unshare --net failed"
nsname=good			# a name of it in $dir, for in_good
in_good() { nsenter --net="$dir/$nsname" "$PYTHON" "$PEER" "$@"; }

conf_begin "$T/hostile.yaml" --dir "$dir" --all "*"
conf_service echo "127.0.0.1:$echo_port" "127.0.0.1:$port"
daemon_up -d "nsrelayd started" "$CONF"
check_within 10 "the proper namespace is served" \
	in_good echo --port "$port" --bytes 4KiB --timeout 2

# counts the opens of files (inotify IN_OPEN) for SECS: "NAME COUNT" lines
cat >"$T/opens.py" <<'PY'
import ctypes, os, select, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
IN_OPEN = 0x20
names = {}
for p in sys.argv[2:]:
    wd = libc.inotify_add_watch(fd, p.encode(), IN_OPEN)
    if wd < 0:
        sys.exit("inotify_add_watch %s: %s" % (p, os.strerror(ctypes.get_errno())))
    names[wd] = os.path.basename(p)
count = dict.fromkeys(names.values(), 0)
print("watching", flush=True)
end = time.monotonic() + float(sys.argv[1])
while True:
    left = end - time.monotonic()
    if left <= 0:
        break
    if select.select([fd], [], [], left)[0]:
        buf = os.read(fd, 65536)
        i = 0
        while i < len(buf):
            wd, mask, cookie, ln = struct.unpack_from("iIII", buf, i)
            i += 16 + ln
            if wd in names:
                count[names[wd]] += 1
for n in sorted(count):
    print(n, count[n])
PY

# --- the hostile files, planted while the daemon runs
t_plant=$(_now_us)
ln -s /proc/self/ns/net "$dir/self-link"
ln -s "/proc/$DPID/ns/net" "$dir/pid-link"
ln -s "$dir/good" "$dir/real-link"
mount_ns "/proc/$$/ns/net" host-mount
mount_ns "$dir/good" dup
printf 'not a namespace\n' >"$dir/junk"
chmod 0644 "$dir/junk"
: >"$dir/empty"			# a placeholder no namespace is ever mounted on
chmod 0644 "$dir/empty"

for n in self-link pid-link real-link; do
	sym_logged() { grep -q "ns $1: $dir/$1 is a symbolic link; refused" "$DLOG"; }
	check_within 10 "a symbolic link ($n) is refused and logged" sym_logged "$n"
done
host_logged() {
	grep -q "ns host-mount: $dir/host-mount is the daemon's own network namespace; refused" "$DLOG"
}
check_within 10 "a bind mount of the host's namespace is refused by identity" host_logged
dup_logged() { grep -q "ns dup: the same namespace as good; served once" "$DLOG"; }
check_within 10 "a second name of a served namespace: the duplicate is logged" dup_logged
junk_logged() {
	grep -q "warning: ns junk: $dir/junk is not a network namespace" "$DLOG"
}
check_within 12 "a file that is not a namespace: logged at warning level" junk_logged
empty_logged() {
	grep -q "warning: ns empty: $dir/empty is not a network namespace" "$DLOG"
}
check_within 12 "an empty file no namespace is mounted on: logged at warning level" empty_logged
t_empty=$(_now_us)
cmp_ok $(( (t_empty - t_plant) / 1000 )) -ge 4000 \
	"... after the window in which a namespace may still be mounted on it"

# no listener anywhere but in the proper namespace (its two names)
check "no listener on the host's 127.0.0.1:$port" bash -c "! ss -Hltn 'sport = :$port' | grep -q ."
check "every listener of the daemon is in the proper namespace, once" \
	peer placement --pid "$DPID" --netns-dir "$dir" --ns good \
	--expect "good=127.0.0.1:$port"
nl=$(peer placement --pid "$DPID" --netns-dir "$dir" --ns good | grep -c '^listener ')
is "$nl" 1 "one listener: the namespace is served once, not once per name"

# --- bounded: nothing is retried for ever.  Every file planted above was a
# directory change, and so a rescan that retried every name once; SIGHUP
# retries everything once more.  None of the refusals is logged again.
kill -HUP "$DPID"
hup_seen() { grep -qE "SIGHUP: (re-scanning|reload)" "$DLOG"; }
hup_done() { grep -qE "SIGHUP: re-scanning|reloaded|reload failed" "$DLOG"; }
wait_for 10 hup_seen && wait_for 10 hup_done || bail "SIGHUP not seen in the log"
lines0=$(wc -l <"$DLOG")
# (dup and good are one inode: one watch counts the opens of both)
start_bg opens "$PYTHON" "$T/opens.py" 3 "$dir/junk" "$dir/empty" "$dir/dup"
wait_for 5 _has_line "$opens_out" || bail "opens.py did not start"
check_bg 10 opens "the open counter ran"
lines1=$(wc -l <"$DLOG")
is "$(grep '^junk ' "$opens_out")" "junk 0" \
	"the non-namespace file is not opened again after its window"
is "$(grep '^empty ' "$opens_out")" "empty 0" \
	"the empty file is not opened again after its window"
is "$(grep '^dup ' "$opens_out")" "dup 0" "the namespace of the duplicate name is not opened again (no retry)"
is "$((lines1 - lines0))" 0 "no log line in 3 s of quiet (no retry logged)"
for n in self-link pid-link real-link host-mount dup junk empty; do
	is "$(log_count "ns $n: ")" 1 "$n: logged once, after a rescan and SIGHUP too"
done
is "$(log_count 'Address already in use')" 0 "no EADDRINUSE for the second name"
check "still no listener on the host" bash -c "! ss -Hltn 'sport = :$port' | grep -q ."

# --- the proper namespace was served all along
check "the proper namespace is still served" \
	in_good echo --port "$port" --bytes 64KiB --timeout 2

# --- the duplicate is a name like any other: when the first name goes,
# the rescan serves the namespace under the other one
umount "$dir/good" && rm -f "$dir/good"
nsname=dup
dup_served() {
	peer placement --pid "$DPID" --netns-dir "$dir" --ns dup \
		--expect "dup=127.0.0.1:$port"
}
check_within 10 "its first name removed: served under the second" dup_served
check "... and reachable" in_good echo --port "$port" --bytes 4KiB --timeout 2
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
