#!/bin/bash
# SPDX-License-Identifier: MIT
# No Nagle wait inside the relay: every TCP socket nsrelayd holds (the
# listener, the accepted client, the upstream connection) has TCP_NODELAY,
# so two small writes of a client never wait for an ACK in the relay (with
# a delayed ACK at the other end, up to 40 ms each).  The daemon's sockets
# are read with pidfd_getfd(2), as root.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

netns_new NS
start_server echo echo
conf_begin "$T/nodelay.yaml" "$NS"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000 "[::1]:7000"
daemon_up "$CONF"

start_bg held ip netns exec "$NS" "$PYTHON" "$PEER" hold --port 7000 --n 3 \
	--timeout 30
relays() { [ "$(tcp_sockets | awk '$2 == "established"' | wc -l)" -ge 6 ]; }
# every TCP socket of the daemon: "FD STATE NODELAY"
tcp_sockets() {
	"$PYTHON" - "$DPID" <<'PY'
import ctypes, os, socket, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438
pidfd = os.pidfd_open(pid)
states = {1: "established", 10: "listen"}
for name in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
    try:
        if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
            continue
    except OSError:
        continue
    fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(name), 0)
    if fd < 0:
        continue
    s = socket.socket(fileno=fd)
    try:
        if (s.family not in (socket.AF_INET, socket.AF_INET6) or
                s.type != socket.SOCK_STREAM):
            continue
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        print(name, states.get(info[0], str(info[0])),
              s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    finally:
        s.close()
PY
}
check_within 10 "three relayed connections up" relays
out=$(tcp_sockets)
diag "$out"
is "$(awk '$2 == "listen"' <<<"$out" | wc -l)" 2 "two listening sockets"
is "$(awk '$2 == "established"' <<<"$out" | wc -l)" 6 \
	"six connected sockets: three clients, three upstreams"
is "$(awk '$3 != 1' <<<"$out" | wc -l)" 0 "every one has TCP_NODELAY"
stop_pid "$held_pid"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
