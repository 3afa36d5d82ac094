#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/peers-bench.sh: nsrelayd against the peers that can do its job,
# same workloads, same machine, one run; figures side by side with ratios.
# See README.md here.
#
# Usage: t/bench/peers-bench.sh [--smoke]     (root: it makes a namespace)
#   --smoke  every row for about a second (make bench-smoke, make check):
#            checks that the bench runs, its figures mean nothing
# Env:    NSRELAYD (default $top_builddir/nsrelayd), HAPROXY (haproxy),
#         SOCKET_PROXYD (/lib/systemd/systemd-socket-proxyd),
#         PB_BYTES bulk bytes (4 GiB), PB_CONNS connections of the rate row
#         (20000), PB_CONC in flight (32), PB_PINGS ping-pongs (20000),
#         PB_IDLE idle connections held (9000), PB_REPEAT runs of the
#         bulk, rate and ping-pong rows, medians shown (3); PB_COLS,
#         PB_ROWS: only these columns (of the list below) and workloads
#         (idle ping rate bulk), to look at one closely (perf record -a);
#         PB_SYSCALLS=0 leaves out the strace pass (system calls of each
#         proxy per connection and per ping-pong, after the timed runs)
#
# Columns, in one namespace nspb-$$ (lo up), upstreams on the host's
# 127.0.0.1, every client in the namespace except direct's:
#   direct         client on the host straight to the upstream: the floor
#   minimal        the least a user-space relay can do: pb relay, blocking
#                  read() and write() of 256 KiB, a thread per direction
#                  and connection, no event loop, listener made in the
#                  namespace by setns(2); not a proxy to run (no limits,
#                  no timeouts), the floor of the relay columns (ping-pong,
#                  bulk; not rate and idle: a thread pair a connection)
#   nsrelayd       nsrelayd -f (splice between TCP sockets)
#   nsrelayd-copy  the same with NSRELAY_COPY_ONLY=1 (read/write)
#   haproxy        haproxy -db, nbthread 1, mode tcp, no splice
#   haproxy-splice the same with option splice-auto and maxpipes
#   socket-proxyd  systemd-socket-proxyd, its listener made in the
#                  namespace by systemd-socket-activate, the proxy itself
#                  back in the host's namespace (nsenter)
# Exit status: 0; 1 if a measurement failed (its cell reads FAIL); 77 if
# it cannot run here (not root, no netns, no gcc).

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${NSRELAYD:-}" ]; then
	if [ -n "${top_builddir:-}" ]; then NSRELAYD=$top_builddir/nsrelayd
	else NSRELAYD=./nsrelayd; fi
fi
: "${HAPROXY:=haproxy}"
: "${SOCKET_PROXYD:=/lib/systemd/systemd-socket-proxyd}"
SMOKE=
[ "${1:-}" = --smoke ] && SMOKE=1
if [ -n "$SMOKE" ]; then
	: "${PB_BYTES:=$((64 * 1024 * 1024))}" "${PB_CONNS:=300}" \
	  "${PB_CONC:=8}" "${PB_PINGS:=300}" "${PB_IDLE:=100}" "${PB_REPEAT:=1}"
else
	: "${PB_BYTES:=$((4 * 1024 * 1024 * 1024))}" "${PB_CONNS:=20000}" \
	  "${PB_CONC:=32}" "${PB_PINGS:=20000}" "${PB_IDLE:=9000}" "${PB_REPEAT:=3}"
fi

NS=nspb-$$
PORT0=7301		# listeners in $NS: PORT0 + 10 * column + workload
NS_MADE=
BENCH=peers-bench
STOP_WAIT=2
. "$top_srcdir/t/bench/lib.sh"
CMD=()
declare -A PID R

bench_teardown() {
	[ -n "$NS_MADE" ] && ip netns del "$NS" 2>/dev/null
}

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
[ -x "$NSRELAYD" ] || die "nsrelayd not found: NSRELAYD=$NSRELAYD"
command -v gcc >/dev/null || skip_all "gcc not installed"
command -v ip >/dev/null || skip_all "ip not installed"
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
[ $((2 * PB_IDLE + 300)) -le "$NOFILE" ] ||
	die "PB_IDLE=$PB_IDLE needs $((2 * PB_IDLE + 300)) fds; the limit is $NOFILE"
bench_tmp 755

# ------------------------------------------------------------ load generator

cat >"$T/pb.c" <<'EOF'
/* pb: upstreams and clients of peers-bench.sh; alarm() bounds everything */
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
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define BENCH_NAME "pb"
#include "bench.h"

#define CHUNK (256 * 1024)
static char buf[CHUNK];

/* dial() or die */
static int dial_or_fail(int port, int nonblock)
{
	int fd = dial(port, nonblock);

	if (fd < 0)
		fail("connect");
	return fd;
}
static int listen_any(void)
{
	struct sockaddr_in a = addr(0);
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		fail("listen");
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}
static void quantiles(double *lat, int n, const char *pre, double extra)
{
	qsort(lat, n, sizeof(double), cmpd);
	printf("%s%.1f %.1f %.1f", pre, lat[(n - 1) / 2] * 1e6,
	       lat[(int)((n - 1) * 0.99)] * 1e6,
	       lat[(int)((n - 1) * 0.999)] * 1e6);
	if (extra >= 0)
		printf(" %.0f", extra);
	printf("\n");
}

/* echo (greet: first 16 bytes on accept) with epoll, one process */
static void serve(int greet)
{
	int lfd = listen_any(), ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, c;
			if (fd == lfd) {
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
						    SOCK_CLOEXEC)) >= 0) {
					nodelay(c);
					if (greet && write(c, "pb greeting 0123", 16) != 16) {
						close(c);
						continue;
					}
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EAGAIN))
				close(fd);
			else if (r > 0 && !greet && write(fd, buf, r) != r)
				close(fd);
		}
	}
}

/* source: each connection in turn gets BYTES, then FIN */
static void serve_source(long long bytes)
{
	int lfd = listen_any();
	memset(buf, 'x', sizeof(buf));
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		long long left = bytes;
		while (c >= 0 && left > 0) {
			ssize_t w = write(c, buf, left < CHUNK ? left : CHUNK);
			if (w <= 0)
				break;
			left -= w;
		}
		if (c >= 0)
			close(c);
	}
}

/* down PORT BYTES: seconds to read BYTES to EOF */
static void down(int port, long long bytes)
{
	double t0 = now();
	int fd = dial_or_fail(port, 0);
	long long got = 0;
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		got += r;
	if (got != bytes) {
		fprintf(stderr, "pb: got %lld bytes of %lld\n", got, bytes);
		exit(1);
	}
	printf("%.6f\n", now() - t0);
}

/* ping PORT N: 64-byte ping-pong on one connection; p50 p99 p99.9 us */
static void ping(int port, int n)
{
	int fd = dial_or_fail(port, 0);
	double *lat = calloc(n, sizeof(double));
	memset(buf, 'p', 64);
	for (int i = 0; i < n; i++) {
		double t = now();
		int got = 0;
		if (write(fd, buf, 64) != 64)
			fail("ping write");
		while (got < 64) {
			ssize_t r = read(fd, buf, 64 - got);
			if (r <= 0)
				fail("ping read");
			got += r;
		}
		lat[i] = now() - t;
	}
	quantiles(lat, n, "", -1);
}

/* rate PORT N CONC: connect, 64 B echo, close, CONC in flight at once;
 * prints p50 p99 p99.9 us of each connection's life, then conns/s */
struct conn { int fd, got; double t0; };
static void rate(int port, int n, int conc)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), started = 0, done = 0;
	struct conn *cs = calloc(conc, sizeof(*cs));
	double *lat = calloc(n, sizeof(double)), t0 = now();
	struct epoll_event ev, evs[64];
	memset(buf, 'r', 64);
	for (int k = 0; k < conc && started < n; k++, started++) {
		cs[k].t0 = now();
		cs[k].fd = dial_or_fail(port, 1);
		cs[k].got = -1;		/* not yet written */
		ev.events = EPOLLOUT;
		ev.data.u32 = k;
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[k].fd, &ev);
	}
	while (done < n) {
		int m = epoll_wait(ep, evs, 64, 10000);
		if (m <= 0)
			fail("rate: stalled");
		for (int i = 0; i < m; i++) {
			struct conn *c = &cs[evs[i].data.u32];
			if (c->got < 0) {
				if (write(c->fd, buf, 64) != 64)
					fail("rate write");
				c->got = 0;
				ev.events = EPOLLIN;
				ev.data.u32 = evs[i].data.u32;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			ssize_t r = read(c->fd, buf + 64, 64);
			if (r <= 0)
				fail("rate read");
			if ((c->got += r) < 64)
				continue;
			close(c->fd);
			lat[done++] = now() - c->t0;
			if (started < n) {
				started++;
				c->t0 = now();
				c->fd = dial_or_fail(port, 1);
				c->got = -1;
				ev.events = EPOLLOUT;
				ev.data.u32 = evs[i].data.u32;
				epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
			}
		}
	}
	quantiles(lat, n, "", n / (now() - t0));
}

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

/* idle PORT N: open N, read each greeting, "ready", hold until TERM
 * (greet PORT N: the same without holding) */
static void idle(int port, int n, int hold)
{
	signal(SIGTERM, on_term);
	for (int i = 0; i < n; i++) {
		int fd = dial_or_fail(port, 0), got = 0;
		while (got < 16) {
			ssize_t r = read(fd, buf, 16 - got);
			if (r <= 0) {
				fprintf(stderr, "pb: greeting: %d connections "
					"held, then %s\n", i, r ? strerror(errno) :
					"EOF");
				exit(1);
			}
			got += r;
		}
	}
	printf("ready\n");
	fflush(stdout);
	while (hold && !stop)
		pause();
}

/* relay NSFILE PORT UPPORT: the floor of a user-space relay */
struct rconn;
struct pair { int from, to; struct rconn *k; };
struct rconn { int left; pthread_mutex_t mu; struct pair p[2]; };
static void *pump(void *arg)
{
	struct pair *p = arg;
	struct rconn *k = p->k;
	char *b = malloc(CHUNK);
	ssize_t n;
	int last;
	while (b && (n = read(p->from, b, CHUNK)) > 0) {
		for (ssize_t off = 0, w; off < n; off += w)
			if ((w = write(p->to, b + off, n - off)) <= 0)
				goto out;
	}
out:
	shutdown(p->to, SHUT_WR);
	free(b);
	pthread_mutex_lock(&k->mu);
	last = --k->left == 0;
	pthread_mutex_unlock(&k->mu);
	if (last) {
		close(k->p[0].from);
		close(k->p[0].to);
		free(k);
	}
	return NULL;
}
static void relay(const char *nsfile, int port, int upport)
{
	struct sockaddr_in a = addr(port);
	int one = 1, host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC),
	    ns = open(nsfile, O_RDONLY | O_CLOEXEC), lfd;
	pthread_attr_t at;
	if (host < 0 || ns < 0 || setns(ns, CLONE_NEWNET) < 0)
		fail("setns");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0)
		fail("listen");
	if (setns(host, CLONE_NEWNET) < 0)
		fail("setns back");
	printf("%d\n", port);
	fflush(stdout);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 * 1024);
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), u;
		struct rconn *k;
		pthread_t t;
		if (c < 0)
			continue;
		nodelay(c);
		u = dial_or_fail(upport, 0);
		k = calloc(1, sizeof(*k));
		k->left = 2;
		pthread_mutex_init(&k->mu, NULL);
		k->p[0] = (struct pair){ c, u, k };
		k->p[1] = (struct pair){ u, c, k };
		if (pthread_create(&t, &at, pump, &k->p[0]) ||
		    pthread_create(&t, &at, pump, &k->p[1]))
			fail("pthread_create");
	}
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	signal(SIGPIPE, SIG_IGN);
	alarm(!strncmp(m, "serve", 5) || !strcmp(m, "relay") ? 3600 : 300);
	if (!strcmp(m, "serve-echo"))
		serve(0);
	else if (!strcmp(m, "serve-greet"))
		serve(1);
	else if (!strcmp(m, "serve-source") && argc == 3)
		serve_source(atoll(argv[2]));
	else if (!strcmp(m, "down") && argc == 4)
		down(atoi(argv[2]), atoll(argv[3]));
	else if (!strcmp(m, "ping") && argc == 4)
		ping(atoi(argv[2]), atoi(argv[3]));
	else if (!strcmp(m, "rate") && argc == 5)
		rate(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	else if (!strcmp(m, "idle") && argc == 4)
		idle(atoi(argv[2]), atoi(argv[3]), 1);
	else if (!strcmp(m, "greet") && argc == 4)
		idle(atoi(argv[2]), atoi(argv[3]), 0);
	else if (!strcmp(m, "relay") && argc == 5)
		relay(argv[2], atoi(argv[3]), atoi(argv[4]));
	else {
		fprintf(stderr, "usage: pb serve-echo|serve-greet|serve-source "
			"BYTES|down PORT BYTES|ping PORT N|rate PORT N CONC|"
			"idle PORT N|relay NSFILE PORT UPPORT\n");
		return 2;
	}
	return 0;
}
EOF
bench_cc pb -pthread
PB=$T/pb

# ------------------------------------------------------------ helpers

start_bg() {	# start_bg NAME CMD...: PID[NAME], output in $T/NAME.out/.err
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=("$!")
	PID[$name]=$!
}
nonempty() { [ -s "$1" ]; }
listening_in_ns() { ip netns exec "$NS" ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
HZ=$(getconf CLK_TCK)
# cell KEY COLUMN VALUE; under repetitions every value is kept and the
# table shows the median
cell() { R[$1,$2]=${R[$1,$2]:+${R[$1,$2]} }$3; }
median() {	# the median of the numbers in $1 (FAIL if one is; text as is)
	case " $1 " in *" FAIL "*) echo FAIL; return ;; esac
	[[ $1 =~ ^[0-9.\ ]+$ ]] || { echo "$1"; return; }
	tr ' ' '\n' <<<"$1" | sort -g | awk '{v[NR] = $1} END {
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
failed() { cell "$1" "$2" FAIL; FAILED=1; echo "peers-bench: $2: $1: $3" >&2; }

# ------------------------------------------------------------ set-up

ip netns add "$NS" 2>/dev/null || skip_all "ip netns add does not work here"
NS_MADE=1
ip netns exec "$NS" ip link set lo up || die "cannot bring lo up in $NS"

start_bg up_echo "$PB" serve-echo
start_bg up_greet "$PB" serve-greet
start_bg up_source "$PB" serve-source "$PB_BYTES"
for s in echo greet source; do
	wait_for 5 nonempty "$T/up_$s.out" || die "upstream $s did not start"
done
declare -A UP=([echo]=$(cat "$T/up_echo.out") [greet]=$(cat "$T/up_greet.out")
	       [source]=$(cat "$T/up_source.out"))
WORK=(echo greet source)	# workload w listens on PORT0 + 10 * col + w

COLS=(direct minimal nsrelayd nsrelayd-copy haproxy haproxy-splice socket-proxyd)
declare -A SKIP
port_of() {	# COLUMN WORKLOAD
	local c w i
	[ "$1" = direct ] && { echo "${UP[$2]}"; return; }
	for i in "${!COLS[@]}"; do [ "${COLS[$i]}" = "$1" ] && c=$i; done
	for i in "${!WORK[@]}"; do [ "${WORK[$i]}" = "$2" ] && w=$i; done
	echo $((PORT0 + 10 * c + w))
}
wait_ports() {	# COLUMN: all its listeners up within 10 s
	local w
	for w in "${WORK[@]}"; do
		wait_for 10 listening_in_ns "$(port_of "$1" "$w")" || return 1
	done
}

# minimal: one pb relay per workload
for w in "${WORK[@]}"; do
	start_bg "min_$w" "$PB" relay "/run/netns/$NS" "$(port_of minimal "$w")" "${UP[$w]}"
done
wait_ports minimal || SKIP[minimal]="did not start: $(head -c 200 "$T/min_echo.err")"

# nsrelayd, twice
for col in nsrelayd nsrelayd-copy; do
	{
		printf 'user: nobody\nnamespaces:\n  all: false\n  names: [%s]\n' "$NS"
		# no per-namespace limits: one client stands for many here
		printf 'limits: { connections_per_namespace: 0, connections_per_second: 0 }\n'
		printf 'services:\n'
		for w in "${WORK[@]}"; do
			printf '  %s:\n    listen: "127.0.0.1:%s"\n' "$w" "$(port_of "$col" "$w")"
			printf '    upstream: "127.0.0.1:%s"\n' "${UP[$w]}"
		done
	} >"$T/$col.yaml"
	chmod 644 "$T/$col.yaml"
	if [ "$col" = nsrelayd-copy ]; then
		start_bg "$col" env NSRELAY_COPY_ONLY=1 "$NSRELAYD" -f -c "$T/$col.yaml"
	else
		start_bg "$col" env -u NSRELAY_COPY_ONLY "$NSRELAYD" -f -c "$T/$col.yaml"
	fi
	wait_ports "$col" || { cat "$T/$col.err" >&2; die "$col did not listen"; }
done

# haproxy, without and with splice
HAPV=
if ! command -v "$HAPROXY" >/dev/null 2>&1; then
	SKIP[haproxy]="not installed"
elif ! grep -q -- '+NS' <<<"$("$HAPROXY" -vv 2>/dev/null)"; then
	SKIP[haproxy]="built without +NS"
else
	HAPV=$("$HAPROXY" -v 2>/dev/null | head -1 | awk '{print $3}')
fi
[ -n "${SKIP[haproxy]:-}" ] && SKIP[haproxy-splice]=${SKIP[haproxy]}
HAP_MAXCONN=$((PB_IDLE + 100))
HAP_PIPES=$(( (NOFILE - 2 * HAP_MAXCONN - 200) / 2 ))
[ "$HAP_PIPES" -gt 512 ] && HAP_PIPES=512
[ "$HAP_PIPES" -lt 16 ] && HAP_PIPES=16
for col in haproxy haproxy-splice; do
	[ -n "${SKIP[$col]:-}" ] && continue
	{
		printf 'global\n    nbthread 1\n    maxconn %s\n    uid 65534\n    gid 65534\n' "$HAP_MAXCONN"
		[ "$col" = haproxy-splice ] && printf '    maxpipes %s\n' "$HAP_PIPES"
		printf 'defaults\n    mode tcp\n    maxconn %s\n' "$HAP_MAXCONN"
		printf '    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n'
		[ "$col" = haproxy-splice ] && printf '    option splice-auto\n'
		for w in "${WORK[@]}"; do
			printf 'listen %s\n    bind 127.0.0.1:%s namespace %s\n' "$w" "$(port_of "$col" "$w")" "$NS"
			printf '    server s 127.0.0.1:%s\n' "${UP[$w]}"
		done
	} >"$T/$col.cfg"
	start_bg "$col" "$HAPROXY" -f "$T/$col.cfg" -db
	wait_ports "$col" || SKIP[$col]="did not start: $(grep -m1 -E 'ALERT|rror' "$T/$col.err")"
done

# systemd-socket-proxyd: one per workload (it has one upstream), listener
# made in the namespace, the proxy back in the host's; the three count as
# one column (CPU and memory are read from the one that does the work)
if [ ! -x "$SOCKET_PROXYD" ] || ! command -v systemd-socket-activate >/dev/null ||
   ! command -v nsenter >/dev/null; then
	SKIP[socket-proxyd]="systemd-socket-proxyd, systemd-socket-activate or nsenter missing"
else
	for w in "${WORK[@]}"; do
		start_bg "spd_$w" ip netns exec "$NS" systemd-socket-activate \
			-l "127.0.0.1:$(port_of socket-proxyd "$w")" \
			nsenter --net="/proc/$$/ns/net" "$SOCKET_PROXYD" \
			--connections-max=$((PB_IDLE + 100)) "127.0.0.1:${UP[$w]}"
	done
	wait_ports socket-proxyd || SKIP[socket-proxyd]="did not start: $(head -c 200 "$T/spd_echo.err")"
fi

proxy_pid() {	# COLUMN WORKLOAD: the process doing the work, or nothing
	case $1 in
	direct) ;;
	minimal) echo "${PID[min_$2]}" ;;
	socket-proxyd) echo "${PID[spd_$2]}" ;;
	*) echo "${PID[$1]}" ;;
	esac
}

# run_client NAME PATH ARGS...: pb ARGS as a client of PATH, waited for
run_client() {
	local name=$1 col=$2 pid rc
	shift 2
	if [ "$col" = direct ]; then CMD=("$PB" "$@")
	else CMD=(ip netns exec "$NS" "$PB" "$@"); fi
	"${CMD[@]}" >"$T/$name.out" 2>"$T/$name.err" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid"
	rc=$?
	return "$rc"
}

# ------------------------------------------------------------ workloads

bench_bulk() {
	local col=$1 pp c0 c1 secs
	pp=$(proxy_pid "$col" source)
	[ -n "$pp" ] && c0=$(cpu_ticks "$pp")
	if ! run_client bulk "$col" down "$(port_of "$col" source)" "$PB_BYTES"; then
		failed bulk "$col" "$(head -c 300 "$T/bulk.err")"
		return
	fi
	secs=$(cat "$T/bulk.out")
	cell gbps "$col" "$(awk -v b="$PB_BYTES" -v s="$secs" 'BEGIN{printf "%.2f", b * 8 / s / 1e9}')"
	[ -z "$pp" ] && return
	c1=$(cpu_ticks "$pp")
	cell cpu "$col" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t / hz}')"
	cell gbcpu "$col" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v b="$PB_BYTES" \
		'BEGIN{ if (t > 0) printf "%.2f", b / 1e9 / (t / hz); else print "inf" }')"
}

bench_rate() {
	local col=$1 p50 p99 p999 cps pp c0 c1
	# two threads a connection: their creation is no floor for others
	[ "$col" = minimal ] && return
	pp=$(proxy_pid "$col" echo)
	[ -n "$pp" ] && c0=$(cpu_ticks "$pp")
	if ! run_client rate "$col" rate "$(port_of "$col" echo)" "$PB_CONNS" "$PB_CONC"; then
		failed rate "$col" "$(head -c 300 "$T/rate.err")"
		return
	fi
	read -r p50 p99 p999 cps <"$T/rate.out"
	cell rate "$col" "$cps"
	cell rate50 "$col" "$p50"
	cell rate99 "$col" "$p99"
	cell rate999 "$col" "$p999"
	[ -z "$pp" ] && return
	c1=$(cpu_ticks "$pp")
	cell ratecpu "$col" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$PB_CONNS" \
		'BEGIN{printf "%.1f", t / hz * 1e6 / n}')"
}

bench_ping() {
	local col=$1 p50 p99 p999
	if ! run_client ping "$col" ping "$(port_of "$col" echo)" "$PB_PINGS"; then
		failed ping "$col" "$(head -c 300 "$T/ping.err")"
		return
	fi
	read -r p50 p99 p999 <"$T/ping.out"
	cell ping50 "$col" "$p50"
	cell ping99 "$col" "$p99"
}

# System calls of the proxy per operation: the rate and ping-pong workloads
# again, smaller, with strace -c -f attached to the proxy (not timed: strace
# slows every call).  SYS[COLUMN] gets the calls per connection by name.
declare -A SYS
traced() { grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/$1/status" 2>/dev/null; }
strace_calls() {	# COLUMN NAME N WORKLOAD ARGS...: calls of the proxy / N
	local col=$1 name=$2 n=$3 pp sp
	shift 3
	pp=$(proxy_pid "$col" echo)
	[ -z "$pp" ] && return 1
	strace -c -f -q -p "$pp" -o "$T/$name.$col" 2>/dev/null &
	sp=$!
	PIDS+=("$sp")
	# every thread attached before the workload starts
	wait_for 5 traced "$pp" || { stop_pid "$sp"; return 1; }
	run_client "$name" "$col" "$@" || { stop_pid "$sp"; return 1; }
	kill -INT "$sp" 2>/dev/null
	wait "$sp" 2>/dev/null
	[ -s "$T/$name.$col" ] || return 1
	# strace -c: "% time seconds usecs/call calls [errors] syscall"
	awk -v n="$n" '$NF == "total" { printf "%.1f", $4 / n }' "$T/$name.$col"
}
bench_syscalls() {
	local col=$1 v conns=$((PB_CONNS / 10)) pings=$((PB_PINGS / 10))
	[ "$conns" -ge 100 ] || conns=100
	[ "$pings" -ge 100 ] || pings=100
	if v=$(strace_calls "$col" sysrate "$conns" rate \
		"$(port_of "$col" echo)" "$conns" "$PB_CONC"); then
		cell sysrate "$col" "$v"
		SYS[$col]=$(awk -v n="$conns" '
			/^-|^%|total$|^$/ { next }
			{ c[$NF] = $4 }
			END { for (k in c) if (c[k] / n >= 0.05)
				printf "%s %.2f\n", k, c[k] / n }' \
			"$T/sysrate.$col" | sort -k2,2gr | tr '\n' ' ')
	else
		failed sysrate "$col" "strace pass failed"
	fi
	if v=$(strace_calls "$col" sysping "$pings" ping \
		"$(port_of "$col" echo)" "$pings"); then
		cell sysping "$col" "$v"
	else
		failed sysping "$col" "strace pass failed"
	fi
}

bench_idle() {
	local col=$1 pp before after cpid fds0 held
	pp=$(proxy_pid "$col" greet)
	[ -z "$pp" ] || [ "$col" = minimal ] && return
	before=$(rss_kib "$pp")
	fds0=$(nfds "$pp")
	ip netns exec "$NS" "$PB" idle "$(port_of "$col" greet)" "$PB_IDLE" \
		>"$T/idle.out" 2>"$T/idle.err" &
	cpid=$!
	PIDS+=("$cpid")
	idle_up() { nonempty "$T/idle.out" || ! alive "$cpid"; }
	if ! wait_for 120 idle_up || ! alive "$cpid"; then
		held=$(sed -n 's/^pb: greeting: \([0-9]*\) connections held.*/\1/p' "$T/idle.err")
		if [ "$col" = socket-proxyd ] && [ -n "$held" ]; then
			# it needs 6 fds a connection: it refuses, as it must
			cell idle "$col" "max $held"
			stop_pid "$cpid"
			return
		fi
		failed idle "$col" "$(head -c 200 "$T/idle.err")"
		stop_pid "$cpid"
		return
	fi
	sleep 0.5
	after=$(rss_kib "$pp")
	cell idle "$col" "$(awk -v a="$after" -v b="$before" -v n="$PB_IDLE" \
		'BEGIN{printf "%.2f", (a - b) / n}')"
	cell rss "$col" "$(awk -v k="$after" 'BEGIN{printf "%.1f", k / 1024}')"
	stop_pid "$cpid"
	wait_for 30 fds_at_most "$pp" $((fds0 + 4))
}

say "peers-bench: $(nproc) CPUs ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)${HAPV:+, haproxy $HAPV}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "peers-bench: medians of $PB_REPEAT runs (idle: one); bulk $PB_BYTES bytes upstream->client, one stream; rate $PB_CONNS x (connect, 64 B echo, close), $PB_CONC in flight; ping-pong $PB_PINGS x 64 B; idle $PB_IDLE connections${SMOKE:+ (smoke run: figures mean nothing)}"
for col in "${COLS[@]}"; do
	[ -n "${SKIP[$col]:-}" ] && say "peers-bench: $col skipped: ${SKIP[$col]}"
done

RUN=()
for col in "${COLS[@]}"; do
	[ -z "${PB_COLS:-}" ] || [[ " $PB_COLS " == *" $col "* ]] ||
		SKIP[$col]="not in PB_COLS"
	[ -z "${SKIP[$col]:-}" ] && RUN+=("$col")
done
: "${PB_ROWS:=idle ping rate bulk}"
want_row() { [[ " $PB_ROWS " == *" $1 "* ]]; }
# one connection to the echo and greeting listeners first:
# systemd-socket-activate starts the proxy on the first one, and every
# proxy has its first allocations behind it before memory is read
for col in "${RUN[@]}"; do
	[ "$col" = direct ] && continue
	run_client warm "$col" ping "$(port_of "$col" echo)" 1 &&
	run_client warm "$col" greet "$(port_of "$col" greet)" 1 ||
		failed warm-up "$col" "$(head -c 300 "$T/warm.err")"
done
# idle first: a bulk transfer's buffers would be reused by the idle
# connections and hide their cost
want_row idle && for col in "${RUN[@]}"; do bench_idle "$col"; done
want_row bulk && for col in "${RUN[@]}"; do
	[ "$col" = direct ] && continue
	run_client warm "$col" down "$(port_of "$col" source)" "$PB_BYTES" ||
		failed warm-up "$col" "$(head -c 300 "$T/warm.err")"
done
for ((rep = 0; rep < PB_REPEAT; rep++)); do
	want_row ping && for col in "${RUN[@]}"; do bench_ping "$col"; done
	want_row rate && for col in "${RUN[@]}"; do bench_rate "$col"; done
	want_row bulk && for col in "${RUN[@]}"; do bench_bulk "$col"; done
done
if [ "${PB_SYSCALLS:-1}" != 0 ] && command -v strace >/dev/null; then
	for col in "${RUN[@]}"; do
		[ "$col" = direct ] || [ "$col" = minimal ] && continue
		bench_syscalls "$col"
	done
fi
for k in "${!R[@]}"; do R[$k]=$(median "${R[$k]}"); done
for col in "${RUN[@]}"; do
	pp=$(proxy_pid "$col" echo)
	[ -z "$pp" ] || alive "$pp" || { FAILED=1; echo "peers-bench: $col died" >&2; }
done

# ------------------------------------------------------------ table

ROW_W=36		# row(): t/bench/lib.sh
echo
printf '%-36s' row
for c in "${COLS[@]}"; do printf ' %14s' "$c"; done
printf '\n'
row "bulk Gbit/s" gbps
row "bulk x direct" gbps ratio direct
row "bulk proxy CPU s" cpu
row "bulk GB per proxy CPU-second" gbcpu
row "  x socket-proxyd" gbcpu ratio socket-proxyd
row "rate conns/s" rate
row "  x haproxy" rate ratio haproxy
row "rate p50 us" rate50
row "rate p99 us" rate99
row "  x haproxy" rate99 ratio haproxy
row "rate p99.9 us" rate999
row "rate proxy CPU us per connection" ratecpu
row "ping-pong p50 us" ping50
row "  x haproxy" ping50 ratio haproxy
row "  x direct" ping50 ratio direct
row "ping-pong p99 us" ping99
row "syscalls per connection (rate)" sysrate
row "syscalls per ping-pong" sysping
row "idle KiB per connection ($PB_IDLE)" idle
row "idle RSS MiB with them" rss
for c in "${COLS[@]}"; do
	[ -n "${SYS[$c]:-}" ] && printf '%s per connection: %s\n' "$c" "${SYS[$c]}"
done
exit "$FAILED"
