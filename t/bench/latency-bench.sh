#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/latency-bench.sh: request/response latency through nsrelayd, on a
# quiet loop and while the same daemon provisions and then deprovisions
# N namespaces through its control socket.  Prints figures; asserts nothing.
#
# Usage: t/bench/latency-bench.sh [N]     (default 500, at most 2000; root)
# Env:   NSRELAYD (default $top_builddir/nsrelayd), LAT_QUIET_S (seconds of
#        the quiet phase, default 5), LAT_CONC (control clients at once,
#        default 4).
#
# One namespace nslb-PID (lo up) holds the client; nsrelayd serves it
# 127.0.0.1:7500 -> an echo server on the host's 127.0.0.1.  The client
# sends 64 bytes and waits for their echo, one round trip per millisecond
# (paced, so that it measures the loop's response, not its throughput), on
# one connection, and keeps every latency.  Phases, one after the other:
#   quiet        nothing else happens (LAT_QUIET_S seconds);
#   provision    LAT_CONC clients send "provision USER" for N throwaway
#                users (nsrlb0.. , uids 40000.., index = uid - 31000, so
#                9000..: clear of the other benches and tests), and wait for
#                each answer; the phase lasts until the last answer;
#   deprovision  the same with "deprovision USER" (veths deleted).
# Each provisioned namespace also gets the echo listener (the daemon opens
# it as it would for a real user).  The users are written to /etc/passwd and
# /etc/shadow under lckpwdf(3), the lock useradd and userdel take (one
# useradd or userdel costs 0.2-0.3 s here: 2,000 of them would take longer
# than the bench), and removed the same way at exit, with everything else
# the bench made (namespaces, links, processes, temp dir).
# Exit status: 0; 1 if a phase failed; 77 if it cannot run here.

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${NSRELAYD:=$top_builddir/nsrelayd}"
: "${LAT_QUIET_S:=5}"
: "${LAT_CONC:=4}"
N=${1:-500}
UID0=40000			# uids UID0..UID0+N-1
UID_BASE=31000			# index = uid - UID_BASE: 9000..
PREFIX=nsrlb			# user = namespace name: nsrlb<k>
PORT=7500
NS=nslb-$$
NS_MADE=
USERS_MADE=
BENCH=latency-bench
STOP_WAIT=5
. "$top_srcdir/t/bench/lib.sh"

case $N in ''|*[!0-9]*) die "N must be a number" ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 2000 ] || die "N must be 1..2000"
[ "$(id -u)" = 0 ] || skip_all "needs root (namespaces, users)"
[ -x "$NSRELAYD" ] || die "nsrelayd not found: NSRELAYD=$NSRELAYD"
command -v gcc >/dev/null || skip_all "gcc not installed"
command -v python3 >/dev/null || skip_all "python3 not installed"
command -v ip >/dev/null || skip_all "ip not installed"

our_links() {
	ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
		grep -E "^nlb(9[0-9]{3}|1[01][0-9]{3})\$"
}

bench_teardown() {
	local i
	for i in /run/netns/"$PREFIX"*; do
		[ -e "$i" ] && [ ! -L "$i" ] && ip netns del "${i##*/}" 2>/dev/null
	done
	for i in $(our_links); do ip link del "$i" 2>/dev/null; done
	[ -n "$NS_MADE" ] && ip netns del "$NS" 2>/dev/null
	[ -n "$USERS_MADE" ] && python3 "$T/users.py" del "$PREFIX" "$UID0" "$N"
}

bench_tmp 711

# ------------------------------------------------------------------ helpers

# users.py add|del PREFIX UID0 N: throwaway users PREFIX<k>, uid UID0+k, group
# nogroup, no home, no login, under the shadow lock; del removes exactly
# those (name and uid both match).  add refuses if any name or uid exists.
cat >"$T/users.py" <<'EOF'
import ctypes, os, pwd, sys
verb, prefix, uid0, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ours = {"%s%d" % (prefix, k): uid0 + k for k in range(n)}
libc = ctypes.CDLL(None, use_errno=True)

def rewrite(path, keep, add):
    st = os.stat(path)
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if keep(l)]
    tmp = path + ".nsrbench"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines + add) + "\n")
        f.flush()
        os.fchown(f.fileno(), st.st_uid, st.st_gid)
        os.fchmod(f.fileno(), st.st_mode & 0o7777)
        os.fsync(f.fileno())
    os.rename(tmp, path)

if libc.lckpwdf() != 0:
    sys.exit("users.py: lckpwdf failed")
try:
    if verb == "add":
        taken = [u for u in ours if u in {p.pw_name for p in pwd.getpwall()}]
        uids = {p.pw_uid for p in pwd.getpwall()}
        taken += [str(u) for u in ours.values() if u in uids]
        if taken:
            sys.exit("users.py: taken already: %s" % " ".join(taken[:5]))
        rewrite("/etc/passwd", lambda l: True,
                ["%s:x:%d:65534::/nonexistent:/usr/sbin/nologin" % (u, i)
                 for u, i in ours.items()])
        rewrite("/etc/shadow", lambda l: True,
                ["%s:!*:19000::::::" % u for u in ours])
    else:
        def mine(l):
            f = l.split(":")
            return f[0] in ours and (len(f) < 3 or not f[2].isdigit()
                                     or int(f[2]) == ours[f[0]])
        rewrite("/etc/passwd", lambda l: not mine(l), [])
        names = set(ours)
        rewrite("/etc/shadow", lambda l: l.split(":")[0] not in names, [])
finally:
    libc.ulckpwdf()
EOF

# ctl.py SOCK VERB PREFIX N CONC: VERB PREFIX0..N-1 over CONC connections
# at once, one request in flight on each; prints "SECONDS ERRORS" and the
# first error on stderr.
cat >"$T/ctl.py" <<'EOF'
import socket, sys, threading, time
path, verb, prefix, n, conc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
errors, first, lock = [0], [None], threading.Lock()

def worker(k):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(path)
    f = s.makefile("rb")
    for i in range(k, n, conc):
        s.sendall(("%s %s%d\n" % (verb, prefix, i)).encode())
        line = f.readline().decode(errors="replace").strip()
        if not line.startswith("ok"):
            with lock:
                errors[0] += 1
                first[0] = first[0] or "%s %s%d: %s" % (verb, prefix, i, line)
    s.close()

t0 = time.monotonic()
th = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
for t in th: t.start()
for t in th: t.join()
print("%.3f %d" % (time.monotonic() - t0, errors[0]))
if first[0]:
    print(first[0], file=sys.stderr)
EOF

cat >"$T/lb.c" <<'EOF'
/* lb: the echo upstream and the paced latency client of latency-bench.sh */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static void fail(const char *what)
{
	fprintf(stderr, "lb: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void serve_echo(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[64];
	char buf[65536];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 1024) ||
	    getsockname(lfd, (void *)&a, &len))
		fail("listen");
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, c;
			ssize_t r;

			if (fd == lfd) {
				while ((c = accept4(lfd, NULL, NULL, 0)) >= 0) {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r <= 0 || write(fd, buf, r) != r)
				close(fd);
		}
	}
}

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }
static int cmpl(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}
static long ns_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* lat PORT: a round trip of 64 bytes every millisecond until SIGTERM; then
 * "N P50 P99 P999 MAX" in microseconds (N round trips, FAILED if one failed) */
static void lat(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { 5, 0 };
	size_t cap = 1 << 20, n = 0;
	long *v = malloc(cap * sizeof(long));
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	char msg[64], got[64];
	struct timespec next;

	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (void *)&a, sizeof(a)))
		fail("connect");
	memset(msg, 'p', sizeof(msg));
	printf("connected\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop && n < cap) {
		long t0 = ns_now();
		size_t off = 0;

		if (write(fd, msg, sizeof(msg)) != sizeof(msg))
			fail("write");
		while (off < sizeof(got)) {
			ssize_t r = read(fd, got + off, sizeof(got) - off);
			if (r <= 0) {
				if (r < 0 && errno == EINTR && !stop)
					continue;
				if (stop)
					goto out;
				fail("read");
			}
			off += r;
		}
		v[n++] = (ns_now() - t0) / 1000;
		next.tv_nsec += 1000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stop)
			;
	}
out:
	if (!n) {
		printf("0 - - - -\n");
		return;
	}
	qsort(v, n, sizeof(long), cmpl);
	printf("%zu %ld %ld %ld %ld\n", n, v[(n - 1) / 2], v[(size_t)((n - 1) * 0.99)],
	       v[(size_t)((n - 1) * 0.999)], v[n - 1]);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(1800);			/* always ends */
	if (argc == 2 && !strcmp(argv[1], "serve-echo"))
		serve_echo();
	else if (argc == 3 && !strcmp(argv[1], "lat"))
		lat(atoi(argv[2]));
	else {
		fprintf(stderr, "usage: lb serve-echo | lat PORT\n");
		return 2;
	}
	return 0;
}
EOF
bench_cc lb

nonempty() { [ -s "$1" ]; }
listening() { ip netns exec "$NS" ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

# ------------------------------------------------------------------ set-up

for ((k = 0; k < N; k++)); do
	! getent passwd "$PREFIX$k" >/dev/null || die "user $PREFIX$k exists already"
	[ ! -e "/run/netns/$PREFIX$k" ] || die "namespace $PREFIX$k exists already"
done
[ -z "$(our_links)" ] || die "links nlb9xxx exist already: remove them first"
python3 "$T/users.py" add "$PREFIX" "$UID0" "$N" || die "cannot create the users"
USERS_MADE=1

ip netns add "$NS" 2>/dev/null || skip_all "ip netns add does not work here"
NS_MADE=1
ip netns exec "$NS" ip link set lo up || die "lo up in $NS"

"$T/lb" serve-echo >"$T/echo.out" 2>"$T/echo.err" &
PIDS+=("$!")
wait_for 5 nonempty "$T/echo.out" || die "the echo server did not start"
UP=$(cat "$T/echo.out")

cat >"$T/nsrelay.yaml" <<EOF
user: nobody
namespaces:
  all: false
  names: [$NS]
services:
  echo:
    listen: "127.0.0.1:$PORT"
    upstream: "127.0.0.1:$UP"
provision:
  uid_base: $UID_BASE
  namespace: "%u"
  host_interface: "nlb%i"
  control: $T/control.sock
EOF
"$NSRELAYD" -f -c "$T/nsrelay.yaml" >"$T/nsrelayd.log" 2>&1 &
DPID=$!
PIDS+=("$DPID")
wait_for 10 listening || { cat "$T/nsrelayd.log" >&2; die "nsrelayd did not listen in $NS"; }
wait_for 10 test -S "$T/control.sock" || die "no control socket"

# ------------------------------------------------------------------ phases

declare -A R
# phase NAME [VERB]: the latency client runs while VERB runs for the N
# users (or for LAT_QUIET_S seconds without VERB)
phase() {
	local name=$1 verb=${2-} lpid secs errs
	ip netns exec "$NS" "$T/lb" lat "$PORT" >"$T/lat.$name" 2>"$T/lat.$name.err" &
	lpid=$!
	PIDS+=("$lpid")
	wait_for 5 nonempty "$T/lat.$name" || { FAILED=1; R[$name,n]=FAIL; return; }
	if [ -n "$verb" ]; then
		read -r secs errs < <(python3 "$T/ctl.py" "$T/control.sock" "$verb" \
			"$PREFIX" "$N" "$LAT_CONC" 2>"$T/ctl.$name.err")
		if [ "${errs:-1}" != 0 ]; then
			FAILED=1
			echo "latency-bench: $name: ${errs:-?} errors: $(head -c 300 "$T/ctl.$name.err")" >&2
		fi
		R[$name,secs]=${secs:-FAIL}
		R[$name,rate]=$(awk -v s="${secs:-0}" -v n="$N" 'BEGIN{ if (s > 0) printf "%.0f", n / s; else print "-" }')
	else
		sleep "$LAT_QUIET_S"
		R[$name,secs]=$LAT_QUIET_S
		R[$name,rate]=-
	fi
	kill -TERM "$lpid"
	wait "$lpid"
	read -r R[$name,n] R[$name,p50] R[$name,p99] R[$name,p999] R[$name,max] < <(tail -n1 "$T/lat.$name")
}

say "latency-bench: $(nproc) CPUs, kernel $(uname -r), N=$N users, $LAT_CONC control clients at once"
say "latency-bench: one round trip of 64 bytes per ms through nsrelayd (client in $NS), load average $(cut -d' ' -f1-3 /proc/loadavg)"
phase quiet
phase provision provision
up=$(ls /run/netns | grep -c "^$PREFIX")
phase deprovision deprovision
left=$(ls /run/netns | grep -c "^$PREFIX")
[ "$up" = "$N" ] || { FAILED=1; echo "latency-bench: $up namespaces after provisioning, not $N" >&2; }
[ "$left" = 0 ] || { FAILED=1; echo "latency-bench: $left namespaces left after deprovisioning" >&2; }
kill -0 "$DPID" 2>/dev/null || { FAILED=1; echo "latency-bench: nsrelayd died" >&2; tail -5 "$T/nsrelayd.log" >&2; }

echo
printf '%-30s %12s %14s %16s\n' "" quiet "provision $N" "deprovision $N"
row() {	# LABEL KEY
	printf '%-30s %12s %14s %16s\n' "$1" "${R[quiet,$2]:--}" "${R[provision,$2]:--}" "${R[deprovision,$2]:--}"
}
row "phase seconds" secs
row "requests per second" rate
row "round trips" n
row "p50 us" p50
row "p99 us" p99
row "p99.9 us" p999
row "max us" max
exit "$FAILED"
