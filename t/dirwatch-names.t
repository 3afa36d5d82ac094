#!/bin/bash
# SPDX-License-Identifier: MIT
# A change in the namespace directory costs the daemon a look at the names
# that changed, not at every namespace it serves: with 40 namespaces
# served, one more appearing and one going are handled with a few statfs(2)
# calls (strace counts them), where a rescan of the directory would make
# one per served namespace (41 or more).  Both changes take effect, and
# the other namespaces stay served.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v unshare >/dev/null || skip_all "unshare not found"
command -v strace >/dev/null || skip_all "strace not found"

N=40
dir=$T/netns
mkdir -m 0755 "$dir" || bail "mkdir $dir"
port=$(peer freeport) || bail "freeport failed"
start_server echo echo

ns_make() { netns_file "$dir/$1"; }	# ns_make NAME: in $dir
listening() { [ "$(log_count "ns $1: echo: listening on")" -ge "${2:-1}" ]; }

for ((k = 1; k <= N; k++)); do ns_make "n$k"; done
conf_begin "$T/names.yaml" --dir "$dir" --all "n*"
conf_service echo "127.0.0.1:$echo_port" "127.0.0.1:$port"
daemon_up -d "nsrelayd started" "$CONF"
all_up() { [ "$(log_count 'ns n[0-9]+: echo: listening on')" -ge "$N" ]; }
check_within 20 "$N namespaces served" all_up

start_bg st strace -f -e trace=statfs -o "$T/statfs.log" -p "$DPID"
attached() { grep -q "Process $DPID attached" "$st_err"; }
wait_for 10 attached || bail "strace did not attach: $(cat "$st_err")"

ns_make new
check_within 10 "a namespace that appears is served" listening new
umount "$dir/n1" && rm -f "$dir/n1" || bail "cannot remove $dir/n1"
gone() { [ "$(log_count 'ns n1: namespace gone')" -ge 1 ]; }
check_within 10 "a namespace that goes is let go" gone
stop_pid "$st_pid"
wait "$st_pid" 2>/dev/null

n=$(grep -c 'statfs("' "$T/statfs.log")
diag "statfs calls while one namespace appeared and one went: $n"
ok "$([ "$n" -ge 1 ] && echo 0 || echo 1)" \
	"strace saw the new namespace looked at ($n statfs calls)"
ok "$([ "$n" -le 10 ] && echo 0 || echo 1)" \
	"only the changed names were looked at ($n statfs calls, <= 10; a rescan makes >= $((N + 1)))"
is "$(grep -c 'statfs(".*/n2"' "$T/statfs.log")" 0 "an unchanged namespace was not looked at"
check "an unchanged namespace is still served" \
	nsenter --net="$dir/n2" "$PYTHON" "$PEER" echo --port "$port" --bytes 4KiB --timeout 2
check "the new one serves" \
	nsenter --net="$dir/new" "$PYTHON" "$PEER" echo --port "$port" --bytes 4KiB --timeout 2
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
