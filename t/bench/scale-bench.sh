#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/scale-bench.sh: nsrelayd and HAProxy with thousands of namespaces
# x 4 listeners: start time until every listener accepts, memory, descriptors.
# Prints figures; asserts nothing.  See README.md here.
#
# Usage: t/bench/scale-bench.sh [--smoke] [N...]   (root: it makes namespaces)
#   N        namespaces per row block, each with 4 listeners (default:
#            1000 4000); run in increasing order, the namespaces of a block
#            are kept for the next one
#   --smoke  N=20 unless given (make bench-smoke, make check): checks that
#            the bench runs, its figures mean nothing
# Env:    NSRELAYD (default $top_builddir/nsrelayd), NSRELAYCTL (its
#         nsrelayctl), HAPROXY (haproxy), SC_HAP_MAXCONN HAProxy's global
#         maxconn (1000), SC_TIMEOUT seconds a start may take (300),
#         KEEP_TMP=1 keeps configs and logs
#
# Namespaces nssc-$$-<i> (lo up, nothing else), made and removed with
# ip -batch; one upstream on the host's 127.0.0.1 that greets and reads
# until EOF; 4 listeners 127.0.0.1:7700..7703 in every namespace.  For each
# N and each column, three starts of the relay:
#   0 namespaces  the same relay with nothing to listen on (nsrelayd: match
#                 names that do not exist; haproxy: one listener, it will not
#                 run with none): VmRSS once it stops growing
#   listening     until every listener is in LISTEN (read from
#                 /proc/self/net/tcp in each namespace: no connection made),
#                 then VmRSS and descriptors
#   probed        a probe (its sockets made in the namespaces beforehand)
#                 connects to every listener and closes each connection at
#                 once, again for those that refused, until all N x 4 did:
#                 seconds from the relay's exec to the last of them; then,
#                 once those connections have gone (all counted by the
#                 relay, none left in it; seconds from the last probe to
#                 then), VmRSS
# KiB per listener = (RSS listening - RSS with 0 namespaces) / listeners.
# HAProxy: nbthread 1, mode tcp, one "bind ... namespace" line per listener,
# fd-hard-limit at this shell's hard limit (the machine's: HAProxy as root
# could raise its own); a refusal to start is its cell, "fails: why".
# Exit status: 0; 1 if an nsrelayd cell failed (FAIL); 77 if it cannot run
# here (not root, no netns, no gcc).

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${NSRELAYD:-}" ]; then
	if [ -n "${top_builddir:-}" ]; then NSRELAYD=$top_builddir/nsrelayd
	else NSRELAYD=./nsrelayd; fi
fi
: "${NSRELAYCTL:=$(dirname "$NSRELAYD")/nsrelayctl}"
: "${HAPROXY:=haproxy}"
: "${SC_HAP_MAXCONN:=1000}"
: "${SC_TIMEOUT:=300}"

SMOKE=
NS_LIST=()
for a in "$@"; do
	case $a in
	--smoke) SMOKE=1 ;;
	''|*[!0-9]*) echo "usage: scale-bench.sh [--smoke] [N...]" >&2; exit 2 ;;
	*) [ "$a" -ge 1 ] || { echo "scale-bench: N must be at least 1" >&2; exit 2; }
	   NS_LIST+=("$a") ;;
	esac
done
if [ ${#NS_LIST[@]} = 0 ]; then
	if [ -n "$SMOKE" ]; then NS_LIST=(20); else NS_LIST=(1000 4000); fi
fi
mapfile -t NS_LIST < <(printf '%s\n' "${NS_LIST[@]}" | sort -n -u)
NMAX=${NS_LIST[-1]}

PFX=nssc-$$-			# namespaces $PFX0 .. $PFX<NMAX-1>
PORT0=7700			# listeners PORT0 .. PORT0+NPORTS-1 in each
NPORTS=4
MADE=0				# namespaces made so far: $PFX0 .. $PFX<MADE-1>
DPID=
BENCH=scale-bench
STOP_WAIT=10
. "$top_srcdir/t/bench/lib.sh"

del_namespaces() {	# every namespace this run made, one ip -batch
	local i
	[ "$MADE" -gt 0 ] || return 0
	for ((i = 0; i < MADE; i++)); do echo "netns del $PFX$i"; done |
		ip -force -batch - >/dev/null 2>&1
	# what a failed batch left (never another run's: the PID is in the name)
	for i in /run/netns/"$PFX"*; do
		[ -e "$i" ] && ip netns del "${i##*/}" 2>/dev/null
	done
	MADE=0
}

bench_teardown() {
	del_namespaces
}

[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
[ -x "$NSRELAYD" ] || die "nsrelayd not found: NSRELAYD=$NSRELAYD"
command -v gcc >/dev/null || skip_all "gcc not installed"
command -v ip >/dev/null || skip_all "ip not installed"
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
[ $((NMAX * NPORTS + 100)) -le "$NOFILE" ] ||
	die "$NMAX x $NPORTS listeners need more descriptors than the limit ($NOFILE) for the probe"
bench_tmp 755

# ------------------------------------------------------------ sc: C helpers

cat >"$T/sc.c" <<'EOF'
/* sc: the upstream, the probes and lo-up of scale-bench.sh */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

static char **names;
static size_t nnames;

static double now_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void fail(const char *what, const char *name)
{
	fprintf(stderr, "sc: %s%s%s: %s\n", what, name ? " " : "",
		name ? name : "", strerror(errno));
	exit(1);
}
static void read_names(const char *path)
{
	char line[256];
	FILE *f = fopen(path, "r");
	if (!f)
		fail("open", path);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		names = realloc(names, (nnames + 1) * sizeof(*names));
		names[nnames++] = strdup(line);
	}
	fclose(f);
}
/* enter namespace NAME (this whole process: it never goes back) */
static void enter(const char *name)
{
	char path[300];
	int fd;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		fail("entering", name);
	close(fd);
}
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}
static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* serve: on 127.0.0.1, a 16-byte greeting to every client, then read
 * until EOF; prints the port */
static void serve(void)
{
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	char buf[4096];
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
				  SOCK_NONBLOCK, 0), ep = epoll_create1(0);

	raise_nofile();
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
		fail("listen", NULL);
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, c;
			if (fd == lfd) {
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
						    SOCK_CLOEXEC)) >= 0) {
					if (write(c, "sc greeting 0123", 16) != 16) {
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
		}
	}
}

/* lo-up LIST: lo up in every namespace named in LIST */
static void lo_up(void)
{
	for (size_t i = 0; i < nnames; i++) {
		struct ifreq ifr = { 0 };
		int s;
		enter(names[i]);
		s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		strcpy(ifr.ifr_name, "lo");
		if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
			fail("lo in", names[i]);
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			fail("lo up in", names[i]);
		close(s);
	}
}

/* PID runs (not gone, not a zombie its parent has yet to reap) */
static int alive(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t r;
	int fd;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = 0;
	p = strrchr(buf, ')');
	return p && p[1] && p[2] != 'Z' && p[2] != 'X';
}

/* read_start START: once the file "T0 PID\n" is there (written when the
 * relay is started: T0 its CLOCK_REALTIME start just before the fork, PID
 * the process to watch), 1 and both; else 0 */
static int read_start(const char *start, double *t0, pid_t *pid)
{
	FILE *f = fopen(start, "r");
	char nl = 0;
	int ok;
	if (!f)
		return 0;
	ok = fscanf(f, "%lf %d%c", t0, pid, &nl) == 3 && nl == '\n';
	fclose(f);
	return ok;
}

/* probe LIST PORT0 NPORTS START TIMEOUT: a socket for every listener made
 * in its namespace, "ready", then passes over them all until every one
 * was accepted: connect, close at once on success; a refusal leaves the
 * rest of that namespace for the next pass.  The passes begin before the
 * relay does (all refused), so that the first one after its listeners
 * are up sees them.  Prints the seconds from T0 (START) to the last
 * success, and the passes. */
static void probe(int port0, int nports, const char *start, double timeout)
{
	size_t n = nnames * nports, left = n;
	int *fd = malloc(n * sizeof(int)), passes = 0, lasterr = 0, got = 0;
	double t0 = 0, t1, last = 0;
	pid_t pid = 0;

	raise_nofile();
	for (size_t i = 0; i < nnames; i++) {
		enter(names[i]);
		for (int p = 0; p < nports; p++)
			if ((fd[i * nports + p] = socket(AF_INET, SOCK_STREAM |
						SOCK_CLOEXEC, 0)) < 0)
				fail("socket in", names[i]);
	}
	printf("ready\n");
	fflush(stdout);
	t1 = now_real();
	while (left) {
		passes++;
		for (size_t i = 0; i < nnames; i++) {
			for (int p = 0; p < nports; p++) {
				struct sockaddr_in a = loopback(port0 + p);
				int *s = &fd[i * nports + p];
				if (*s < 0)
					continue;
				if (connect(*s, (struct sockaddr *)&a, sizeof(a)) == 0) {
					close(*s);
					*s = -1;
					left--;
					last = now_real();
					continue;
				}
				lasterr = errno;
				if (errno != ECONNREFUSED) {
					/* not reusable: a fresh one there */
					close(*s);
					enter(names[i]);
					*s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
					if (*s < 0)
						fail("socket in", names[i]);
				}
				break;
			}
		}
		if (!got)
			got = read_start(start, &t0, &pid);
		if (!left)
			break;
		if (now_real() - t1 > timeout) {
			fprintf(stderr, "sc: %zu of %zu listeners not accepting "
				"after %.0f s (last error: %s)\n", left, n,
				timeout, strerror(lasterr));
			exit(1);
		}
		if (got && !alive(pid)) {
			fprintf(stderr, "sc: the relay exited, %zu of %zu "
				"listeners never accepted\n", left, n);
			exit(3);
		}
		usleep(2000);
	}
	for (int i = 0; !got && i < 5000; i++) {
		usleep(1000);
		got = read_start(start, &t0, &pid);
	}
	if (!got) {
		fprintf(stderr, "sc: no start file %s\n", start);
		exit(1);
	}
	printf("%.3f %d\n", last - t0, passes);
}

/* listening LIST PORT0 NPORTS PID TIMEOUT: until every namespace has
 * 127.0.0.1:PORT0.. in LISTEN (its /proc/self/net/tcp: no connection
 * made); exits 3 if PID exits first.  The kernel walks every socket of
 * every namespace for each file: fine once, too slow to poll. */
static void listening(int port0, int nports, pid_t pid, double timeout)
{
	double t0 = now_real();
	char *done = calloc(nnames, 1), line[512];
	size_t left = nnames;

	while (left) {
		for (size_t i = 0; i < nnames; i++) {
			unsigned seen = 0;
			FILE *f;
			if (done[i])
				continue;
			enter(names[i]);
			if (!(f = fopen("/proc/self/net/tcp", "r")))
				fail("/proc/self/net/tcp in", names[i]);
			while (fgets(line, sizeof(line), f)) {
				unsigned ip, port, st;
				if (sscanf(line, " %*d: %x:%x %*x:%*x %x", &ip,
					   &port, &st) == 3 && st == 0x0A &&
				    ip == htonl(INADDR_LOOPBACK) &&
				    port >= (unsigned)port0 &&
				    port < (unsigned)(port0 + nports))
					seen |= 1u << (port - port0);
			}
			fclose(f);
			if (seen != (1u << nports) - 1)
				break;
			done[i] = 1;
			left--;
		}
		if (!left)
			break;
		if (!alive(pid)) {
			fprintf(stderr, "sc: the relay exited, %zu of %zu "
				"namespaces not listening\n", left, nnames);
			exit(3);
		}
		if (now_real() - t0 > timeout) {
			fprintf(stderr, "sc: %zu of %zu namespaces not listening "
				"after %.0f s\n", left, nnames, timeout);
			exit(1);
		}
		usleep(10000);
	}
	printf("%.3f\n", now_real() - t0);
}

/* queued LIST PORT0 NPORTS: connections waiting in the accept queues of
 * the listeners 127.0.0.1:PORT0.. of every namespace (rx_queue of a
 * listener in /proc/self/net/tcp), and in how many queues */
static void queued(int port0, int nports)
{
	unsigned long conns = 0, queues = 0;
	char line[512];
	for (size_t i = 0; i < nnames; i++) {
		FILE *f;
		enter(names[i]);
		if (!(f = fopen("/proc/self/net/tcp", "r")))
			fail("/proc/self/net/tcp in", names[i]);
		while (fgets(line, sizeof(line), f)) {
			unsigned ip, port, st, rxq;
			if (sscanf(line, " %*d: %x:%x %*x:%*x %x %*x:%x", &ip,
				   &port, &st, &rxq) == 4 && st == 0x0A &&
			    ip == htonl(INADDR_LOOPBACK) && rxq &&
			    port >= (unsigned)port0 &&
			    port < (unsigned)(port0 + nports)) {
				conns += rxq;
				queues++;
			}
		}
		fclose(f);
	}
	printf("%lu %lu\n", conns, queues);
}

/* unix PATH LINE: LINE to the stream socket PATH, its answer to EOF */
static void unix_cmd(const char *path, const char *line)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char buf[65536];
	ssize_t r;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("connect", path);
	if (write(s, line, strlen(line)) < 0 || write(s, "\n", 1) < 0)
		fail("write", path);
	while ((r = read(s, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, r, stdout);
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	signal(SIGPIPE, SIG_IGN);
	alarm(!strcmp(m, "serve") ? 7200 : 900);
	if (!strcmp(m, "serve") && argc == 2) {
		serve();
	} else if (!strcmp(m, "lo-up") && argc == 3) {
		read_names(argv[2]);
		lo_up();
	} else if (!strcmp(m, "probe") && argc == 7) {
		read_names(argv[2]);
		probe(atoi(argv[3]), atoi(argv[4]), argv[5], atof(argv[6]));
	} else if (!strcmp(m, "listening") && argc == 7) {
		read_names(argv[2]);
		listening(atoi(argv[3]), atoi(argv[4]), atoi(argv[5]),
			  atof(argv[6]));
	} else if (!strcmp(m, "queued") && argc == 5) {
		read_names(argv[2]);
		queued(atoi(argv[3]), atoi(argv[4]));
	} else if (!strcmp(m, "unix") && argc == 4) {
		unix_cmd(argv[2], argv[3]);
	} else {
		fprintf(stderr, "usage: sc serve | lo-up LIST | probe LIST PORT0 "
			"NPORTS START TIMEOUT | listening LIST PORT0 NPORTS PID "
			"TIMEOUT | queued LIST PORT0 NPORTS | unix PATH LINE\n");
		return 2;
	}
	return 0;
}
EOF
bench_cc sc
SC=$T/sc

# ------------------------------------------------------------ helpers

mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k / 1024}'; }

# rss_settled PID: VmRSS (KiB) once three reads 100 ms apart agree (at
# most 5 s), or the last read
rss_settled() {
	local pid=$1 a b c i
	a=$(rss_kib "$pid"); sleep 0.1; b=$(rss_kib "$pid")
	for ((i = 0; i < 50; i++)); do
		sleep 0.1
		c=$(rss_kib "$pid")
		[ -n "$c" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ] && break
		a=$b; b=$c
	done
	echo "${c:-0}"
}

names_file() {	# names_file N: the first N names, one a line
	local i
	for ((i = 0; i < $1; i++)); do echo "$PFX$i"; done >"$T/names.$1"
	echo "$T/names.$1"
}

make_namespaces() {	# make_namespaces N: up to N namespaces, lo up
	local n=$1 i t0 from=$MADE
	[ "$MADE" -ge "$n" ] && return 0
	t0=$EPOCHREALTIME
	for ((i = MADE; i < n; i++)); do
		[ ! -e "/run/netns/$PFX$i" ] || die "namespace $PFX$i exists already"
		echo "netns add $PFX$i"
	done >"$T/add.batch"
	ip -batch "$T/add.batch" >"$T/add.err" 2>&1
	local rc=$?
	# count what is there, whatever the batch said, so that all goes at exit
	for ((i = MADE; i < n; i++)); do
		[ -e "/run/netns/$PFX$i" ] && MADE=$((i + 1))
	done
	[ "$rc" = 0 ] || die "ip -batch netns add failed: $(head -3 "$T/add.err")"
	for ((i = from; i < n; i++)); do echo "$PFX$i"; done >"$T/new.names"
	"$SC" lo-up "$T/new.names" || die "cannot bring lo up"
	say "scale-bench: $n namespaces, lo up ($(awk -v a="${t0/,/.}" \
		-v b="${EPOCHREALTIME/,/.}" 'BEGIN{printf "%.1f", b - a}') s to make $((n - from)))"
}

# ------------------------------------------------------------ set-up

"$SC" serve >"$T/up.out" 2>"$T/up.err" &
PIDS+=("$!")
wait_for 5 test -s "$T/up.out" || die "the upstream did not start"
UP=$(cat "$T/up.out")

nsrelayd_config() {	# nsrelayd_config FILE MATCH
	local p
	{
		printf 'user: nobody\nnamespaces:\n  all: true\n  match: "%s"\n' "$2"
		printf 'control: { path: "%s" }\n' "$T/control.sock"
		printf 'services:\n'
		for ((p = 0; p < NPORTS; p++)); do
			printf '  s%d:\n    listen: "127.0.0.1:%d"\n' "$p" $((PORT0 + p))
			printf '    upstream: "127.0.0.1:%s"\n' "$UP"
		done
	} >"$1"
	chmod 644 "$1"
}

HARD=$(ulimit -Hn)
haproxy_config() {	# haproxy_config FILE NAMESFILE
	local p
	{
		printf 'global\n    nbthread 1\n    maxconn %s\n' "$SC_HAP_MAXCONN"
		printf '    fd-hard-limit %s\n    uid 65534\n    gid 65534\n' "$HARD"
		printf '    stats socket %s mode 600\n' "$T/haproxy.sock"
		printf 'defaults\n    mode tcp\n    maxconn %s\n' "$SC_HAP_MAXCONN"
		printf '    timeout connect 5s\n    timeout client 1m\n    timeout server 1m\n'
		for ((p = 0; p < NPORTS; p++)); do
			printf 'listen s%d\n' "$p"
			sed "s/.*/    bind 127.0.0.1:$((PORT0 + p)) namespace &/" "$2"
			printf '    server up 127.0.0.1:%s\n' "$UP"
		done
	} >"$1"
}

HAPV=
HAP_SKIP=
if ! command -v "$HAPROXY" >/dev/null 2>&1; then
	HAP_SKIP="not installed"
elif ! grep -q -- '+NS' <<<"$("$HAPROXY" -vv 2>/dev/null)"; then
	HAP_SKIP="built without +NS"
else
	HAPV=$("$HAPROXY" -v 2>/dev/null | head -1 | awk '{print $3}')
fi

declare -A R		# R[KEY,N,COLUMN]
COLS=(nsrelayd haproxy)

# start_relay COLUMN CONFIG TAG: exec it in the background, DPID
start_relay() {
	local col=$1 cfg=$2 tag=$3
	if [ "$col" = nsrelayd ]; then
		rm -f "$T/control.sock"
		"$NSRELAYD" -f -c "$cfg" >"$T/$tag.log" 2>&1 &
	else
		"$HAPROXY" -db -f "$cfg" >"$T/$tag.log" 2>&1 &
	fi
	DPID=$!
	PIDS+=("$DPID")
}
stop_relay() { stop_pid "$DPID"; DPID=; }

# why COLUMN TAG: the first complaint in its log, one short line
why() {
	local l
	l=$(grep -m1 -E 'ALERT|fatal|rror' "$T/$2.log")
	[ -n "$l" ] || l=$(tail -1 "$T/$2.log")
	l=$(sed -E 's/^\[[A-Z]+\] *\([0-9]+\) *: *//; s/^nsrelayd: *//' <<<"$l")
	echo "${l//$T\//}"
}
# failed KEY N COLUMN TAG MESSAGE: nsrelayd FAIL (exit 1), haproxy "fails:
# why"; shown in the row of KEY (base, after), else in the first row
failed() {
	local msg=$5 k=$1
	[ -n "$msg" ] || msg=$(why "$3" "$4")
	case $k in base|after) ;; *) k=start ;; esac
	if [ "$3" = haproxy ]; then
		R[$k,$2,$3]="fails: ${msg:-exited}"
	else
		R[$k,$2,$3]=FAIL
		FAILED=1
		echo "scale-bench: $3, $2 namespaces: $1: $msg" >&2
	fi
}

# nsrelayd_idle: no connection left in the daemon (its status)
nsrelayd_idle() {
	"$NSRELAYCTL" -s "$T/control.sock" -t 5 status --json 2>/dev/null |
		grep -q '"connections":0[,}]'
}
# all_gone COLUMN N FDS: the N x 4 probe connections have all been taken
# from the accept queues and have left the relay.  nsrelayd: its stats
# count them accepted (or reset for want of descriptors) and its status has
# no connection (without nsrelayctl: its descriptors back to FDS and its
# pipe pool, 16 pipes).  haproxy: its descriptors back to FDS, then every
# accept queue empty (read from each namespace's /proc/net/tcp, which walks
# every socket of every namespace each time: a second or more at 1,000;
# its frontends' conn_tot in "show stat" counts only some of the probes).
all_gone() {
	local want=$(($2 * NPORTS)) acc nores
	if [ "$1" = haproxy ]; then
		fds_at_most "$DPID" "$3" && [ "$("$SC" queued "$T/names.$2" \
			"$PORT0" "$NPORTS" 2>/dev/null)" = "0 0" ]
	elif [ -x "$NSRELAYCTL" ]; then
		read -r acc nores < <(nsrelayd_accepted)
		[ $((acc + nores)) -ge "$want" ] && nsrelayd_idle
	else
		fds_at_most "$DPID" $(($3 + 32))
	fi
}
# hap_stat: "CONNS CUR": connections HAProxy's frontends s0.. accepted
# (conn_tot: a client gone before its session started counts there, not
# in stot), and sessions current in them and their backends
hap_stat() {
	"$SC" unix "$T/haproxy.sock" "show stat" 2>/dev/null | awk -F, '
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$1 ~ /^s[0-9]+$/ { cur += $c["scur"]
			if ($2 == "FRONTEND") tot += $c["conn_tot"] }
		END { print tot + 0, (NR > 1 && c["conn_tot"]) ? cur + 0 : -1 }'
}
gone_why() {	# gone_why COLUMN N: what all_gone saw, one line
	local q
	read -r -a q < <("$SC" queued "$T/names.$2" "$PORT0" "$NPORTS")
	printf '%s left in %s accept queues, ' "${q[0]:-?}" "${q[1]:-?}"
	if [ "$1" = haproxy ]; then
		hap_stat | awk '{ printf "%d connections, %d sessions current", $1, $2 }'
	else
		echo "accepted and reset: $(nsrelayd_accepted)"
	fi
	echo ", $(nfds "$DPID") fds"
}
# nsrelayd_accepted: connections the daemon accepted, and those it reset
# at once for want of descriptors, all namespaces
nsrelayd_accepted() {
	[ -x "$NSRELAYCTL" ] || { echo "? ?"; return; }
	"$NSRELAYCTL" -s "$T/control.sock" -t 30 stats --json 2>/dev/null |
		grep -o '"accepted":[0-9]*\|"no-resources":[0-9]*' |
		awk -F: '/accepted/ {a += $2} /no-res/ {r += $2} END{print a + 0, r + 0}'
}

# base COLUMN N: RSS of the relay with no namespace to serve
cell_base() {
	local col=$1 n=$2 tag="$1.$2.base" cfg
	if [ "$col" = nsrelayd ]; then
		cfg=$T/$tag.yaml
		nsrelayd_config "$cfg" "${PFX}none-*"
		start_relay "$col" "$cfg" "$tag"
		ctl_up() { [ -S "$T/control.sock" ] || ! alive "$DPID"; }
		if ! wait_for 30 ctl_up || ! alive "$DPID"; then
			failed base "$n" "$col" "$tag" ""
			stop_relay
			return
		fi
	else
		cfg=$T/$tag.cfg
		echo "${PFX}0" >"$T/base.names"
		haproxy_config "$cfg" "$T/base.names"
		start_relay "$col" "$cfg" "$tag"
		if ! "$SC" listening "$T/base.names" "$PORT0" 1 "$DPID" 30 \
			>/dev/null 2>"$T/$tag.sc"; then
			failed base "$n" "$col" "$tag" ""
			stop_relay
			return
		fi
	fi
	R[base,$n,$col]=$(rss_settled "$DPID")
	R[basefds,$n,$col]=$(nfds "$DPID")
	stop_relay
}

# cell_listening COLUMN N CONFIG: until all listen, no connection; RSS, fds
cell_listening() {
	local col=$1 n=$2 cfg=$3 tag="$1.$2.listen"
	start_relay "$col" "$cfg" "$tag"
	if ! "$SC" listening "$(names_file "$n")" "$PORT0" "$NPORTS" "$DPID" \
		"$SC_TIMEOUT" >/dev/null 2>"$T/$tag.sc"; then
		failed rss "$n" "$col" "$tag" "$(alive "$DPID" && cat "$T/$tag.sc")"
		stop_relay
		return 1
	fi
	R[rss,$n,$col]=$(rss_settled "$DPID")
	R[fds,$n,$col]=$(nfds "$DPID")
	if ! alive "$DPID"; then
		failed rss "$n" "$col" "$tag" ""
		stop_relay
		return 1
	fi
	stop_relay
}

# cell_probed COLUMN N CONFIG: exec to all N x 4 accepting, then RSS once
# the probe's connections have gone
cell_probed() {
	local col=$1 n=$2 cfg=$3 tag="$1.$2.probe" ppid secs passes acc nores short t0
	rm -f "$T/start"
	"$SC" probe "$(names_file "$n")" "$PORT0" "$NPORTS" "$T/start" \
		"$SC_TIMEOUT" >"$T/$tag.sc" 2>"$T/$tag.sc.err" &
	ppid=$!
	PIDS+=("$ppid")
	probe_up() { grep -qs ready "$T/$tag.sc" || ! alive "$ppid"; }
	if ! wait_for 120 probe_up || ! grep -q ready "$T/$tag.sc"; then
		die "the probe did not get ready: $(head -3 "$T/$tag.sc.err")"
	fi
	t0=${EPOCHREALTIME/,/.}		# just before the fork and exec
	start_relay "$col" "$cfg" "$tag"
	echo "$t0 $DPID" >"$T/start"	# one write: read whole or not at all
	if ! wait "$ppid"; then
		failed start "$n" "$col" "$tag" "$(alive "$DPID" && cat "$T/$tag.sc.err")"
		stop_relay
		return 1
	fi
	read -r secs passes < <(tail -1 "$T/$tag.sc")
	R[start,$n,$col]=$secs
	R[passes,$n,$col]=$passes
	if ! wait_for 60 all_gone "$col" "$n" "${R[fds,$n,$col]:-0}"; then
		failed after "$n" "$col" "$tag" "not all gone after 60 s: $(gone_why "$col" "$n")"
		stop_relay
		return 1
	fi
	R[gone,$n,$col]=$(awk -v a="$t0" -v s="$secs" -v b="${EPOCHREALTIME/,/.}" \
		'BEGIN{printf "%.2f", b - a - s}')
	R[after,$n,$col]=$(rss_settled "$DPID")
	if [ "$col" = nsrelayd ]; then
		read -r acc nores < <(nsrelayd_accepted)
		short=$(grep -c 'out of file descriptors' "$T/$tag.log")
		[ "$acc" = $((n * NPORTS)) ] && [ "$short" = 0 ] ||
			say "scale-bench: nsrelayd, $n namespaces: it accepted $acc of the $((n * NPORTS)) probe connections, reset $nores for want of descriptors (no-resources), logged $short descriptor shortages"
	fi
	alive "$DPID" || failed after "$n" "$col" "$tag" ""
	stop_relay
}

# ------------------------------------------------------------ run

say "scale-bench: $(nproc) CPUs ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)${HAPV:+, haproxy $HAPV}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "scale-bench: N namespaces x $NPORTS listeners (127.0.0.1:$PORT0-$((PORT0 + NPORTS - 1))), N = ${NS_LIST[*]}; fd limit $NOFILE; haproxy nbthread 1, maxconn $SC_HAP_MAXCONN, fd-hard-limit $HARD${SMOKE:+ (smoke run: figures mean nothing)}"
[ -n "$HAP_SKIP" ] && say "scale-bench: haproxy skipped: $HAP_SKIP"

for n in "${NS_LIST[@]}"; do
	make_namespaces "$n"
	nsrelayd_config "$T/nsrelayd.$n.yaml" "$PFX*"
	for col in "${COLS[@]}"; do
		[ "$col" = haproxy ] && [ -n "$HAP_SKIP" ] && continue
		if [ "$col" = haproxy ]; then
			cfg=$T/haproxy.$n.cfg
			haproxy_config "$cfg" "$(names_file "$n")"
		else
			cfg=$T/nsrelayd.$n.yaml
		fi
		cell_base "$col" "$n"
		cell_listening "$col" "$n" "$cfg" && cell_probed "$col" "$n" "$cfg"
	done
done
say "scale-bench: load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ table

num() { [[ $1 =~ ^[0-9.]+$ ]]; }
val() {	# val KEY N COLUMN: the cell as shown
	local k=$1 n=$2 c=$3 v b
	[ "$c" = haproxy ] && [ -n "$HAP_SKIP" ] && { echo skipped; return; }
	case $k in
	start|gone) v=${R[$k,$n,$c]:-} ;;
	rss|after|base) v=${R[$k,$n,$c]:-}; ! num "$v" || v=$(mib "$v") ;;
	fds) v=${R[fds,$n,$c]:-} ;;
	per)
		v=${R[rss,$n,$c]:-} b=${R[base,$n,$c]:-}
		if num "$v" && num "$b"; then
			# haproxy's base has one listener of its own
			local l=$((n * NPORTS)); [ "$c" = haproxy ] && l=$((l - 1))
			[ "$l" -gt 0 ] && v=$(awk -v a="$v" -v b="$b" -v l="$l" \
				'BEGIN{printf "%.2f", (a - b) / l}') || v=
		else v=; fi ;;
	plan|planfds)
		# from the largest N with figures: 0 namespaces plus 10,000 / N
		# times what N namespaces added
		local i m a
		v=
		for ((i = ${#NS_LIST[@]} - 1; i >= 0; i--)); do
			m=${NS_LIST[$i]}
			if [ "$k" = plan ]; then a=${R[rss,$m,$c]:-} b=${R[base,$m,$c]:-}
			else a=${R[fds,$m,$c]:-} b=${R[basefds,$m,$c]:-}; fi
			num "$a" && num "$b" || continue
			v=$(awk -v a="$a" -v b="$b" -v m="$m" -v k="$k" 'BEGIN{
				v = b + (a - b) * 10000 / m
				if (k == "plan") printf "%.1f", v / 1024; else printf "%d", v }')
			break
		done ;;
	esac
	echo "${v:--}"
}
row() {	# row LABEL KEY N
	local c
	printf '%-40s' "$1"
	for c in "${COLS[@]}"; do printf ' %10s' "$(val "$2" "$3" "$c")"; done
	printf '\n'
}
echo
printf '%-40s' row
for c in "${COLS[@]}"; do printf ' %10s' "$c"; done
printf '\n'
for n in "${NS_LIST[@]}"; do
	l=$((n * NPORTS))
	say "$n namespaces x $NPORTS listeners ($l)"
	row "  start s until all accept" start "$n"
	row "  RSS MiB listening" rss "$n"
	row "  s until the probes have gone" gone "$n"
	row "  RSS MiB after $l probes" after "$n"
	row "  fds" fds "$n"
	row "  RSS MiB with 0 namespaces" base "$n"
	row "  KiB per listener" per "$n"
done
row "10000 x $NPORTS on paper: RSS MiB" plan "$NMAX"
row "10000 x $NPORTS on paper: fds" planfds "$NMAX"
exit "$FAILED"
