#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/relay-bench.sh: nsrelayd's byte path against a direct connection and
# against HAProxy, same workloads, same machine, same run.  See README.md here.
#
# Usage: t/bench/relay-bench.sh [NSRELAYD]      (root: it makes a namespace)
# Daemon: first argument, else $NSRELAYD, else $top_builddir/nsrelayd, else
#         ./nsrelayd.  HAProxy: $HAPROXY (default: haproxy on PATH); when it
#         is missing its column is skipped and the rest still runs.
# Env:    BENCH_BYTES  bytes per throughput run      (default 2 GiB)
#         BENCH_CONNS  short connections per rate run (default 5000)
#         BENCH_IDLE   idle connections held          (default 2000)
#         BENCH_WORKERS client workers for the rate run (default 2)
#
# Paths, in one namespace nsrb-$$ (lo up), upstreams on the host's 127.0.0.1:
#   direct    client on the host -> upstream (no namespace, no relay)
#   nsrelayd  client in the namespace -> 127.0.0.1:700x there -> nsrelayd
#             (-f, user nobody, one libevent loop) -> upstream
#   haproxy   client in the namespace -> 127.0.0.1:710x there -> haproxy
#             (bind ... namespace, mode tcp, nbthread 1, no splice) -> upstream
# Load generators are a small C program compiled into the temporary directory.
# Exit status: 0, or 1 if a measurement failed (its cell reads FAIL), or 77
# if it cannot run at all here (not root, no netns, no gcc).
# Everything it made (namespace, processes, temp dir) goes in an EXIT trap.

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ $# -ge 1 ]; then
	NSRELAYD=$1
elif [ -z "${NSRELAYD:-}" ]; then
	if [ -n "${top_builddir:-}" ]; then NSRELAYD=$top_builddir/nsrelayd
	else NSRELAYD=./nsrelayd; fi
fi
: "${HAPROXY:=haproxy}"
: "${BENCH_BYTES:=$((2 * 1024 * 1024 * 1024))}"
: "${BENCH_CONNS:=5000}"
: "${BENCH_IDLE:=2000}"
: "${BENCH_WORKERS:=2}"

NS=nsrb-$$
P_NSR=7001			# nsrelayd listens on 7001..7003 in $NS
P_HAP=7101			# haproxy on 7101..7103
NS_MADE=
BENCH=relay-bench
STOP_WAIT=2
. "$top_srcdir/t/bench/lib.sh"
CMD=()
nsrelayd_pid=
haproxy_pid=

for v in BENCH_BYTES BENCH_CONNS BENCH_IDLE BENCH_WORKERS; do
	case ${!v} in ''|*[!0-9]*) die "$v must be a number" ;; esac
	[ "${!v}" -ge 1 ] || die "$v must be at least 1"
done

# ------------------------------------------------------------------ cleanup

# forget_pid PID: a process that has been reaped, so that the trap does not
# signal whatever may get its PID later
forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

bench_teardown() {
	[ -n "$NS_MADE" ] && ip netns del "$NS" 2>/dev/null
}

# ------------------------------------------------------------------ checks

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
[ -x "$NSRELAYD" ] || die "nsrelayd not found: NSRELAYD=$NSRELAYD"
command -v gcc >/dev/null || skip_all "gcc not installed (apt-get install gcc)"
command -v ip >/dev/null || skip_all "ip not installed (apt-get install iproute2)"
HAVE_HAP=
if command -v "$HAPROXY" >/dev/null 2>&1; then
	HAPVV=$("$HAPROXY" -vv 2>/dev/null)
	if grep -q -- '+NS' <<<"$HAPVV"; then
		HAVE_HAP=1
	else
		HAP_SKIP="haproxy built without namespace support (+NS)"
	fi
else
	HAP_SKIP="haproxy not installed (apt-get install haproxy)"
fi

# fds: nsrelayd 2 per connection, the idle client 1, the upstream 1
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
[ $((2 * BENCH_IDLE + 200)) -le "$NOFILE" ] ||
	die "BENCH_IDLE=$BENCH_IDLE needs $((2 * BENCH_IDLE + 200)) fds; the limit is $NOFILE"

bench_tmp 755

# ------------------------------------------------------------------ load generator

cat >"$T/rbt.c" <<'EOF'
/* rbt: servers and clients of relay-bench.sh.  Every operation is bounded:
 * socket timeouts, and alarm() on the whole process. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#define CHUNK (256 * 1024)
#define GREET "nsrb greeting!\n"	/* 15 + NUL; we send 16 bytes */
#define GLEN 16
static char buf[CHUNK];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what)
{
	fprintf(stderr, "rbt: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void timeouts(int fd, int secs)
{
	struct timeval tv = { secs, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int dial(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail("socket");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	timeouts(fd, 10);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("connect");
	return fd;
}

static int listen_any(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(fd, 4096) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		fail("listen");
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

static int readn(int fd, char *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

static int writen(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* greet: epoll; on accept send 16 bytes, then hold until the peer closes. */
static void serve_greet(void)
{
	int lfd = listen_any(), ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];

	fcntl(lfd, F_SETFL, O_NONBLOCK);
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c;
				while ((c = accept4(lfd, NULL, NULL,
						    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (write(c, GREET, GLEN) != GLEN) {
						close(c);
						continue;
					}
					ev.events = EPOLLIN;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
			} else {
				ssize_t r = read(fd, buf, sizeof(buf));
				if (r == 0 || (r < 0 && errno != EAGAIN))
					close(fd);	/* leaves the epoll set */
			}
		}
	}
}

/* source: each connection in turn gets BYTES, then FIN. */
static void serve_source(long long bytes)
{
	int lfd = listen_any();
	memset(buf, 'x', sizeof(buf));
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		long long left = bytes;
		if (c < 0)
			continue;
		timeouts(c, 10);
		while (left > 0) {
			size_t n = left < CHUNK ? left : CHUNK;
			if (writen(c, buf, n) < 0)
				break;
			left -= n;
		}
		close(c);
	}
}

/* sink: each connection in turn is read to EOF; reply "COUNT\n"; close. */
static void serve_sink(void)
{
	int lfd = listen_any();
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		long long got = 0;
		ssize_t r;
		char line[32];
		if (c < 0)
			continue;
		timeouts(c, 10);
		while ((r = read(c, buf, sizeof(buf))) > 0)
			got += r;
		if (r == 0) {
			int n = snprintf(line, sizeof(line), "%lld\n", got);
			writen(c, line, n);
		}
		close(c);
	}
}

/* down: read BYTES to EOF; print seconds. */
static void client_down(int port, long long bytes)
{
	double t0 = now();
	int fd = dial(port);
	long long got = 0;
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		got += r;
	if (r < 0)
		fail("read");
	if (got != bytes) {
		fprintf(stderr, "rbt: got %lld bytes of %lld\n", got, bytes);
		exit(1);
	}
	printf("%.6f\n", now() - t0);
}

/* up: send BYTES, shut down writing, read the sink's count; print seconds. */
static void client_up(int port, long long bytes)
{
	double t0 = now();
	int fd = dial(port);
	long long left = bytes;
	char line[32] = "";
	ssize_t r;
	size_t off = 0;
	memset(buf, 'y', sizeof(buf));
	while (left > 0) {
		size_t n = left < CHUNK ? left : CHUNK;
		if (writen(fd, buf, n) < 0)
			fail("write");
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	while (off < sizeof(line) - 1 &&
	       (r = read(fd, line + off, sizeof(line) - 1 - off)) > 0)
		off += r;
	if (atoll(line) != bytes) {
		fprintf(stderr, "rbt: sink got %s of %lld\n", line, bytes);
		exit(1);
	}
	printf("%.6f\n", now() - t0);
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* rate: N sequential connect/read greeting/close, split over W workers;
 * print "conns/s p50_us p99_us". */
static void client_rate(int port, int n, int w)
{
	double *lat = mmap(NULL, n * sizeof(double), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double t0;
	int bad = 0, status;

	if (lat == MAP_FAILED)
		fail("mmap");
	t0 = now();
	for (int k = 0; k < w; k++) {
		pid_t p = fork();
		if (p < 0)
			fail("fork");
		if (p == 0) {
			for (int i = k; i < n; i += w) {
				double a = now();
				int fd = dial(port);
				char g[GLEN];
				if (readn(fd, g, GLEN) < 0 || memcmp(g, GREET, GLEN))
					fail("greeting");
				lat[i] = now() - a;
				close(fd);
			}
			_exit(0);
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	if (bad)
		exit(1);
	t0 = now() - t0;
	qsort(lat, n, sizeof(double), cmpd);
	printf("%.0f %.0f %.0f\n", n / t0, lat[(n - 1) / 2] * 1e6,
	       lat[(int)((n - 1) * 0.99)] * 1e6);
}

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

/* idle: open N, read each greeting, print "ready", hold until SIGTERM. */
static void client_idle(int port, int n)
{
	int *fds = calloc(n, sizeof(int));
	signal(SIGTERM, on_term);
	for (int i = 0; i < n; i++) {
		char g[GLEN];
		fds[i] = dial(port);
		if (readn(fds[i], g, GLEN) < 0)
			fail("greeting");
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	signal(SIGPIPE, SIG_IGN);
	alarm(!strncmp(m, "serve-", 6) ? 900 : 120);	/* always ends */
	if (!strcmp(m, "serve-greet"))
		serve_greet();
	else if (!strcmp(m, "serve-source") && argc == 3)
		serve_source(atoll(argv[2]));
	else if (!strcmp(m, "serve-sink"))
		serve_sink();
	else if (!strcmp(m, "down") && argc == 4)
		client_down(atoi(argv[2]), atoll(argv[3]));
	else if (!strcmp(m, "up") && argc == 4)
		client_up(atoi(argv[2]), atoll(argv[3]));
	else if (!strcmp(m, "rate") && argc == 5)
		client_rate(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	else if (!strcmp(m, "idle") && argc == 4)
		client_idle(atoi(argv[2]), atoi(argv[3]));
	else {
		fprintf(stderr, "usage: rbt serve-greet|serve-source BYTES|"
			"serve-sink|down PORT BYTES|up PORT BYTES|"
			"rate PORT N WORKERS|idle PORT N\n");
		return 2;
	}
	return 0;
}
EOF
bench_cc rbt
RBT=$T/rbt

# ------------------------------------------------------------------ helpers

# start_bg NAME CMD...: run in the background, stdout/stderr to $T/NAME.*
start_bg() {
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=("$!")
	eval "${name}_pid=\$!"
}

# wait_for SECS CMD...: poll every 50 ms, bounded

nonempty() { [ -s "$1" ]; }
listening_in_ns() { ip netns exec "$NS" ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

cpu_ticks() {	# utime + stime of PID, in clock ticks
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'
}
HZ=$(getconf CLK_TCK)

# client PATH ARGS...: sets CMD to run rbt ARGS as a client of PATH (direct:
# on the host, else in the namespace; ip netns exec execs, so a background
# "${CMD[@]}" & has the client's own PID in $!)
client() {
	local p=$1
	shift
	if [ "$p" = direct ]; then CMD=("$RBT" "$@")
	else CMD=(ip netns exec "$NS" "$RBT" "$@"); fi
}

# run_client NAME: run "${CMD[@]}" in the background, stdout/stderr to
# $T/NAME.out/.err, and wait for it: the wait builtin lets a signal's trap
# run at once, and the trap then stops the client too.
run_client() {
	local pid rc
	"${CMD[@]}" >"$T/$1.out" 2>"$T/$1.err" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid"
	rc=$?
	forget_pid "$pid"
	return "$rc"
}

# ------------------------------------------------------------------ set-up

ip netns add "$NS" 2>/dev/null || skip_all "ip netns add does not work here"
NS_MADE=1
ip netns exec "$NS" ip link set lo up || die "cannot bring lo up in $NS"

start_bg up_greet "$RBT" serve-greet
start_bg up_source "$RBT" serve-source "$BENCH_BYTES"
start_bg up_sink "$RBT" serve-sink
for s in greet source sink; do
	wait_for 5 nonempty "$T/up_$s.out" || die "upstream $s did not start"
done
U_GREET=$(cat "$T/up_greet.out")
U_SOURCE=$(cat "$T/up_source.out")
U_SINK=$(cat "$T/up_sink.out")

# one listener per workload kind; offset 0 greet, 1 source, 2 sink
cat >"$T/nsrelay.yaml" <<EOF
user: nobody
namespaces:
  all: false
  names: [$NS]
limits: { connections_per_namespace: 0, connections_per_second: 0 }
services:
  greet:
    listen: "127.0.0.1:$P_NSR"
    upstream: "127.0.0.1:$U_GREET"
  source:
    listen: "127.0.0.1:$((P_NSR + 1))"
    upstream: "127.0.0.1:$U_SOURCE"
  sink:
    listen: "127.0.0.1:$((P_NSR + 2))"
    upstream: "127.0.0.1:$U_SINK"
EOF
start_bg nsrelayd "$NSRELAYD" -f -c "$T/nsrelay.yaml"
for i in 0 1 2; do
	wait_for 10 listening_in_ns $((P_NSR + i)) || {
		cat "$T/nsrelayd.err" >&2
		die "nsrelayd did not listen on 127.0.0.1:$((P_NSR + i)) in $NS"
	}
done

if [ -n "$HAVE_HAP" ]; then
	HAP_MAXCONN=$((BENCH_IDLE + 1000))
	cat >"$T/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $HAP_MAXCONN
    uid 65534
    gid 65534
defaults
    mode tcp
    maxconn $HAP_MAXCONN
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout client-fin 1m
    timeout server-fin 1m
listen greet
    bind 127.0.0.1:$P_HAP namespace $NS
    server s 127.0.0.1:$U_GREET
listen source
    bind 127.0.0.1:$((P_HAP + 1)) namespace $NS
    server s 127.0.0.1:$U_SOURCE
listen sink
    bind 127.0.0.1:$((P_HAP + 2)) namespace $NS
    server s 127.0.0.1:$U_SINK
EOF
	start_bg haproxy "$HAPROXY" -f "$T/haproxy.cfg" -db
	for i in 0 1 2; do
		wait_for 10 listening_in_ns $((P_HAP + i)) && continue
		HAVE_HAP=
		HAP_SKIP="haproxy did not start: $(grep -m1 -E 'ALERT|rror' "$T/haproxy.err")"
		break
	done
fi

PATHS=(direct nsrelayd)
[ -n "$HAVE_HAP" ] && PATHS+=(haproxy)
relay_pid() { case $1 in nsrelayd) echo "$nsrelayd_pid" ;; haproxy) echo "$haproxy_pid" ;; esac; }
port_of() {	# PATH OFFSET
	case $1 in
	direct) case $2 in 0) echo "$U_GREET" ;; 1) echo "$U_SOURCE" ;; 2) echo "$U_SINK" ;; esac ;;
	nsrelayd) echo $((P_NSR + $2)) ;;
	haproxy) echo $((P_HAP + $2)) ;;
	esac
}

# results: R[metric,path]
declare -A R
cell() { R[$1,$2]=$3; }
failed() { cell "$1" "$2" FAIL; FAILED=1; echo "relay-bench: $2: $3" >&2; }

# ------------------------------------------------------------------ workloads

# idle memory (first, while the relays' heaps are fresh)
bench_idle() {
	local p=$1 rp before after i cpid fds0
	rp=$(relay_pid "$p")
	if [ -n "$rp" ]; then
		before=$(rss_kib "$rp")
		fds0=$(nfds "$rp")
	fi
	rm -f "$T/idle.out"
	client "$p" idle "$(port_of "$p" 0)" "$BENCH_IDLE"
	"${CMD[@]}" >"$T/idle.out" 2>"$T/idle.err" &
	cpid=$!
	PIDS+=("$cpid")
	if ! wait_for 60 nonempty "$T/idle.out" || ! alive "$cpid"; then
		failed idle_rss "$p" "idle: $(head -c 300 "$T/idle.err")"
		stop_pid "$cpid"
		forget_pid "$cpid"
		return
	fi
	if [ -n "$rp" ]; then
		sleep 0.5
		after=$(rss_kib "$rp")
		cell idle_before "$p" "$(awk -v k="$before" 'BEGIN{printf "%.1f MiB", k / 1024}')"
		cell idle_after "$p" "$(awk -v k="$after" 'BEGIN{printf "%.1f MiB", k / 1024}')"
		cell idle_per "$p" "$(awk -v a="$after" -v b="$before" -v n="$BENCH_IDLE" \
			'BEGIN{printf "%.1f", (a - b) / n}')"
	fi
	stop_pid "$cpid"
	forget_pid "$cpid"
	# wait for the relay to let go of the connections (bounded)
	[ -n "$rp" ] && wait_for 20 fds_at_most "$rp" $((fds0 + 2))
}

bench_rate() {
	local p=$1 cps p50 p99
	client "$p" rate "$(port_of "$p" 0)" "$BENCH_CONNS" "$BENCH_WORKERS"
	if run_client rate; then
		read -r cps p50 p99 <"$T/rate.out"
		cell rate "$p" "$cps"
		cell p50 "$p" "$p50"
		cell p99 "$p" "$p99"
	else
		failed rate "$p" "rate: $(head -c 300 "$T/rate.err")"
	fi
}

# bench_tp PATH down|up: MiB/s and the relay's CPU
bench_tp() {
	local p=$1 dir=$2 rp c0 c1 secs off
	rp=$(relay_pid "$p")
	[ "$dir" = down ] && off=1 || off=2
	[ -n "$rp" ] && c0=$(cpu_ticks "$rp")
	client "$p" "$dir" "$(port_of "$p" $off)" "$BENCH_BYTES"
	if ! run_client tp; then
		failed "tp_$dir" "$p" "$dir: $(head -c 300 "$T/tp.err")"
		return
	fi
	secs=$(cat "$T/tp.out")
	cell "tp_$dir" "$p" "$(awk -v b="$BENCH_BYTES" -v s="$secs" 'BEGIN{printf "%.0f", b / 1048576 / s}')"
	if [ -n "$rp" ]; then
		c1=$(cpu_ticks "$rp")
		cell "cpu_$dir" "$p" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t / hz}')"
		cell "eff_$dir" "$p" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v b="$BENCH_BYTES" \
			'BEGIN{ if (t > 0) printf "%.0f", b / 1048576 / (t / hz); else print "inf" }')"
	fi
}

# ------------------------------------------------------------------ run

HAPV=$("$HAPROXY" -v 2>/dev/null | head -1)
say "relay-bench: $(nproc) CPUs ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), libevent $(pkg-config --modversion libevent 2>/dev/null || echo '?'), ${HAPV:-haproxy: none}"
say "relay-bench: nsrelayd = one libevent loop; haproxy = nbthread 1, mode tcp, no splice, tune.bufsize default; both single-threaded"
say "relay-bench: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every column)"
say "relay-bench: sizes BENCH_BYTES=$BENCH_BYTES BENCH_CONNS=$BENCH_CONNS (workers $BENCH_WORKERS) BENCH_IDLE=$BENCH_IDLE; namespace $NS"
[ -z "$HAVE_HAP" ] && say "relay-bench: skipped: ${HAP_SKIP:-haproxy}"

for p in "${PATHS[@]}"; do bench_idle "$p"; done
for p in "${PATHS[@]}"; do bench_rate "$p"; done
for p in "${PATHS[@]}"; do bench_tp "$p" down; done
for p in "${PATHS[@]}"; do bench_tp "$p" up; done

for p in "${PATHS[@]}"; do
	[ "$p" = direct ] && continue
	alive "$(relay_pid "$p")" || { FAILED=1; echo "relay-bench: $p died" >&2; tail -5 "$T/$p.err" >&2; }
done

# ------------------------------------------------------------------ table

COLS=(direct nsrelayd haproxy)
row() {	# LABEL KEY
	local c v
	printf '%-34s' "$1"
	for c in "${COLS[@]}"; do
		if [ "$c" = haproxy ] && [ -z "$HAVE_HAP" ]; then v=skipped
		else v=${R[$2,$c]:--}; fi
		printf ' %12s' "$v"
	done
	printf '\n'
}
GiB=$(awk -v b="$BENCH_BYTES" 'BEGIN{printf "%.3g", b / 1073741824}')
echo
printf '%-34s %12s %12s %12s\n' metric direct nsrelayd haproxy
row "down ${GiB} GiB MiB/s" tp_down
row "down relay CPU s" cpu_down
row "down MiB per relay CPU-s" eff_down
row "up ${GiB} GiB MiB/s" tp_up
row "up relay CPU s" cpu_up
row "up MiB per relay CPU-s" eff_up
row "rate $BENCH_CONNS conns/s" rate
row "rate p50 connect->greeting us" p50
row "rate p99 connect->greeting us" p99
row "idle relay RSS before" idle_before
row "idle relay RSS with $BENCH_IDLE conns" idle_after
row "idle KiB per connection" idle_per
exit "$FAILED"
