#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/db-bench.sh: a real database behind the relay: a private MariaDB
# on the host, sysbench and a PHP page loop in a namespace, nsrelayd against
# the unix socket, the veth route and HAProxy; then one namespace's connect
# storm against another's pages and round trips.  Prints figures; asserts
# nothing.  See README.md here.
#
# Usage: t/bench/db-bench.sh        (root: it makes namespaces and a veth)
# Env:   NSRELAYD (default $top_builddir/nsrelayd), NSRELAYCTL (its
#        nsrelayctl: the contention daemon's stats), HAPROXY (haproxy),
#        MARIADBD (/usr/sbin/mariadbd), DB_SECS seconds of each timed run
#        (4), DB_REPEAT runs of each workload and column, interleaved,
#        medians shown (3), DB_CSECS seconds of each contention phase (10),
#        DB_ROWS which tables (lone contention), DB_COLS only these columns
#        of the lone table, DB_TABLE rows of the sysbench table (10000),
#        DB_THREADS sysbench threads (8), DB_PHP php-cli processes (4),
#        DB_STORM connect loops of the storm (64), KEEP_TMP=1 keeps the
#        temporary directory (configs, logs, MariaDB's datadir).
#        A short run: DB_SECS=1 DB_REPEAT=1 DB_CSECS=2 (about 40 s).
#
# Not in t/bench-smoke.t (make check) on purpose: it needs mariadb-server,
# sysbench, php-cli and php-mysql, and initialising a datadir and starting
# MariaDB alone takes seconds; make bench runs it.
#
# MariaDB: a datadir of its own in the temporary directory
# (mariadb-install-db), mariadbd started by this script as user mysql, on
# 127.0.0.1 and the veth's host address at a port free on the host (from
# 13306 up) and a unix socket in the temporary directory: never the
# system's instance, which may run beside it on 3306.  A user bench, a
# table sbtest1 (sysbench's, DB_TABLE rows), prepared once.
#
# Lone table, one namespace nsdb-$$-<c> per column (lo up), a client in it:
#   unix-socket     the clients on the host, on MariaDB's unix socket: the
#                   floor (no TCP)
#   veth            the namespace's veth (100.64.0.0/10, a /30 of this
#                   run) straight to MariaDB on the host's end
#   nsrelayd        127.0.0.1:3306 in the namespace -> nsrelayd -f, its
#                   defaults -> 127.0.0.1:port on the host
#   nsrelayd-unix   the same to MariaDB's unix socket
#   nsrelayd-nolim  nsrelayd -f with every limit written out as 0 (off):
#                   what the defaults are measured against
#   haproxy         haproxy -db, nbthread 1, mode tcp, bind ... namespace
# Workloads: sysbench oltp_point_select (DB_THREADS persistent connections,
# DB_SECS s): queries/s, p95 ms; DB_PHP php-cli processes, each looping
# for DB_SECS s over a page (mysqli connect, three primary-key SELECTs,
# close): pages/s, p95 ms.  The proxy's CPU (utime+stime of its process
# and children from /proc, over each run) per query and per page.
#
# Contention table: one nsrelayd (defaults) serving nsdb-$$-a and
# nsdb-$$-b: mysql on 127.0.0.1:3306 and an echo service on 127.0.0.1:7 in
# each.  A: DB_STORM loops of (connect, 64-byte echo, close); B: the PHP
# page loop and a ping-pong (64 bytes, one round trip a millisecond, one
# connection).  Phases of DB_CSECS s: B alone, A alone, both.
#
# Exit status: 0; 1 if a measurement failed (its cell reads FAIL); 77 if
# it cannot run here (not root, no netns, no gcc, MariaDB, sysbench or
# PHP's mysqli not installed).

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${NSRELAYD:-}" ]; then
	if [ -n "${top_builddir:-}" ]; then NSRELAYD=$top_builddir/nsrelayd
	else NSRELAYD=./nsrelayd; fi
fi
: "${NSRELAYCTL:=$(dirname "$NSRELAYD")/nsrelayctl}"
: "${HAPROXY:=haproxy}"
: "${MARIADBD:=/usr/sbin/mariadbd}"
: "${DB_SECS:=4}" "${DB_REPEAT:=3}" "${DB_CSECS:=10}"
: "${DB_ROWS:=lone contention}" "${DB_TABLE:=10000}" "${DB_THREADS:=8}"
: "${DB_PHP:=4}" "${DB_STORM:=64}"

NSP=nsdb-$$			# namespaces $NSP-<letter>
VETH=vdb$$			# the host's end; veth0 in $NSP-v
NS_MADE=()
BENCH=db-bench
STOP_WAIT=10			# mariadbd's shutdown
. "$top_srcdir/t/bench/lib.sh"
declare -A PID R SKIP

bench_teardown() {
	local ns
	for ns in "${NS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null; done
	ip link del "$VETH" 2>/dev/null
	return 0
}

for v in DB_SECS DB_REPEAT DB_CSECS DB_TABLE DB_THREADS DB_PHP DB_STORM; do
	case ${!v} in ''|*[!0-9]*|0) die "$v must be a positive number" ;; esac
done
[ "$(id -u)" = 0 ] || skip_all "needs root (namespaces, veth)"
[ -x "$NSRELAYD" ] || die "nsrelayd not found: NSRELAYD=$NSRELAYD"
command -v gcc >/dev/null || skip_all "gcc not installed"
command -v ip >/dev/null || skip_all "ip not installed"
command -v ss >/dev/null || skip_all "ss not installed"
[ -x "$MARIADBD" ] && command -v mariadb-install-db >/dev/null &&
	command -v mariadb >/dev/null ||
	skip_all "MariaDB not installed (apt-get install mariadb-server)"
id mysql >/dev/null 2>&1 || skip_all "no user mysql (mariadb-server makes it)"
command -v sysbench >/dev/null || skip_all "sysbench not installed"
command -v php >/dev/null || skip_all "php not installed (apt-get install php-cli)"
php -r 'exit(class_exists("mysqli") ? 0 : 1);' 2>/dev/null ||
	skip_all "PHP without mysqli (apt-get install php-mysql)"
want_row() { [[ " $DB_ROWS " == *" $1 "* ]]; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null
bench_tmp 755

# ------------------------------------------------------------ clients

cat >"$T/dbc.c" <<'EOF'
/* dbc: the echo upstream and the storm and ping-pong clients of
 * db-bench.sh; alarm() bounds everything */
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

#define BENCH_NAME "dbc"
#include "bench.h"

static char buf[65536];


/* serve-echo: an echo server on 127.0.0.1:0 (port printed), epoll */
static void serve(void)
{
	struct sockaddr_in a = addr(0);
	socklen_t len = sizeof(a);
	int one = 1, ep = epoll_create1(EPOLL_CLOEXEC),
	    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[256];
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
		fail("listen");
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, c;
			if (fd == lfd) {
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
						    SOCK_CLOEXEC)) >= 0) {
					nodelay(c);
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r == 0 || (r < 0 && errno != EAGAIN))
				close(fd);
			else if (r > 0 && write(fd, buf, r) != r)
				close(fd);
		}
	}
}

/* storm PORT SECS CONC: CONC loops of (connect, 64-byte echo, close) for
 * SECS s; prints completed connections, failed ones, completed per s */
struct conn { int fd, got; };
static void storm(int port, double secs, int conc)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	long done = 0, errs = 0;
	struct conn *cs = calloc(conc, sizeof(*cs));
	struct epoll_event ev, evs[256];
	double t0 = now(), end = t0 + secs;
	memset(buf, 's', 64);
	for (int k = 0; k < conc; k++)
		cs[k].fd = -1;
	while (now() < end) {
		for (int k = 0; k < conc; k++) {
			if (cs[k].fd >= 0)
				continue;
			if ((cs[k].fd = dial(port, 1)) < 0) {
				errs++;
				continue;
			}
			cs[k].got = -1;		/* not yet written */
			ev.events = EPOLLOUT;
			ev.data.u32 = k;
			epoll_ctl(ep, EPOLL_CTL_ADD, cs[k].fd, &ev);
		}
		int m = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < m; i++) {
			struct conn *c = &cs[evs[i].data.u32];
			ssize_t r;
			if (c->got < 0) {
				if (write(c->fd, buf, 64) != 64)
					goto bad;
				c->got = 0;
				ev.events = EPOLLIN;
				ev.data.u32 = evs[i].data.u32;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			r = read(c->fd, buf + 64, 64);
			if (r <= 0)
				goto bad;
			if ((c->got += r) < 64)
				continue;
			done++;
			close(c->fd);
			c->fd = -1;
			continue;
bad:
			errs++;
			close(c->fd);
			c->fd = -1;
		}
	}
	printf("%ld %ld %.0f\n", done, errs, done / (now() - t0));
}

/* ping PORT SECS: one 64-byte round trip a millisecond (paced, so that it
 * measures how soon the relay answers, not its throughput) for SECS s on
 * one connection; prints round trips, p50 p99 p99.9 max in us */
static void ping(int port, double secs)
{
	int fd = dial(port, 0), n = 0, cap = secs * 1000 + 16;
	double *lat = calloc(cap, sizeof(double)), end = now() + secs;
	struct timespec next;
	if (fd < 0)
		fail("ping connect");
	memset(buf, 'p', 64);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (now() < end && n < cap) {
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
		lat[n++] = now() - t;
		/* the next tick, or now if this one ran late: no burst to
		 * catch up after a stall */
		next.tv_nsec += 1000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000;
		}
		if (next.tv_sec + next.tv_nsec / 1e9 < now())
			clock_gettime(CLOCK_MONOTONIC, &next);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	if (n == 0) {
		fprintf(stderr, "dbc: no round trip\n");
		exit(1);
	}
	qsort(lat, n, sizeof(double), cmpd);
	printf("%d %.0f %.0f %.0f %.0f\n", n, lat[(n - 1) / 2] * 1e6,
	       lat[(int)((n - 1) * 0.99)] * 1e6,
	       lat[(int)((n - 1) * 0.999)] * 1e6, lat[n - 1] * 1e6);
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	signal(SIGPIPE, SIG_IGN);
	alarm(!strcmp(m, "serve-echo") ? 3600 : 300);
	if (!strcmp(m, "serve-echo"))
		serve();
	else if (!strcmp(m, "storm") && argc == 5)
		storm(atoi(argv[2]), atof(argv[3]), atoi(argv[4]));
	else if (!strcmp(m, "ping") && argc == 4)
		ping(atoi(argv[2]), atof(argv[3]));
	else {
		fprintf(stderr, "usage: dbc serve-echo|storm PORT SECS CONC|"
			"ping PORT SECS\n");
		return 2;
	}
	return 0;
}
EOF
bench_cc dbc
DBC=$T/dbc

# page.php HOST PORT SOCKET SECS ROWS LATFILE: pages for SECS s, each a new
# connection, three primary-key SELECTs, close; prints "pages errors
# seconds", each page's milliseconds in LATFILE, the first error on stderr
cat >"$T/page.php" <<'EOF'
<?php
[, $host, $port, $sock, $secs, $rows, $latfile] = $argv;
mysqli_report(MYSQLI_REPORT_OFF);
$lat = [];
$pages = 0;
$errs = 0;
$t0 = microtime(true);
$end = $t0 + (float)$secs;
function oops($what) {
	global $errs;
	if ($errs++ == 0)
		fwrite(STDERR, "page.php: $what\n");
}
while (($t = microtime(true)) < $end && $errs < 100) {
	$db = @mysqli_connect($host, 'bench', 'bench', 'sbtest', (int)$port,
			      $sock === '' ? null : $sock);
	if (!$db) {
		oops('connect: ' . mysqli_connect_error());
		continue;
	}
	$ok = true;
	for ($i = 0; $i < 3 && $ok; $i++) {
		$r = $db->query('SELECT c FROM sbtest1 WHERE id=' . mt_rand(1, (int)$rows));
		if (!$r || !$r->fetch_row()) {
			oops('query: ' . $db->error);
			$ok = false;
		} else {
			$r->free();
		}
	}
	$db->close();
	if ($ok) {
		$pages++;
		$lat[] = (microtime(true) - $t) * 1000;
	}
}
file_put_contents($latfile, implode("\n", array_map(fn($v) => sprintf('%.3f', $v), $lat)) . "\n");
printf("%d %d %.3f\n", $pages, $errs, microtime(true) - $t0);
EOF

# ------------------------------------------------------------ helpers

start_bg() {	# start_bg NAME CMD...: PID[NAME], output in $T/NAME.out/.err
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=("$!")
	PID[$name]=$!
}
nonempty() { [ -s "$1" ]; }
forget() {	# PID: waited for, no longer ours to stop
	local i
	for i in "${!PIDS[@]}"; do [ "${PIDS[$i]}" = "$1" ] && unset 'PIDS[i]'; done
}
# bg_wait OUT ERR CMD...: CMD in the background, waited for: a signal to
# this shell interrupts wait and runs the exit trap at once (a foreground
# command would delay it, and bash drops a SIGINT its child survived)
bg_wait() {
	local out=$1 err=$2 pid rc
	shift 2
	"$@" >"$out" 2>"$err" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid"
	rc=$?
	forget "$pid"
	return "$rc"
}
listening_in_ns() { ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q .; }
HZ=$(getconf CLK_TCK)
cpu_ticks() {	# PID: utime+stime of it and its children (nsrelayd's helper)
	local p t=0 c
	for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		c=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
		t=$((t + ${c:-0}))
	done
	echo "$t"
}
cell() { R[$1,$2]=${R[$1,$2]:+${R[$1,$2]} }$3; }
median() {	# the median of the numbers in $1 (FAIL if one is)
	case " $1 " in *" FAIL "*) echo FAIL; return ;; esac
	[[ $1 =~ ^[0-9.\ ]+$ ]] || { echo "$1"; return; }
	tr ' ' '\n' <<<"$1" | sort -g | awk '{v[NR] = $1} END {
		if (NR % 2) print v[(NR + 1) / 2];
		else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
failed() { cell "$1" "$2" FAIL; FAILED=1; echo "$BENCH: $2: $1: $3" >&2; }
pct() {	# FILE P: the P-th percentile of the numbers in FILE, one a line
	sort -g "$1" | awk -v p="$2" '{v[NR] = $1} END {
		if (NR) printf "%.2f", v[int((NR - 1) * p / 100) + 1]; else print "-" }'
}
mkns() {	# NAME: a namespace with lo up, many ports and TIME_WAIT reuse
	ip netns add "$1" 2>/dev/null || skip_all "ip netns add does not work here"
	NS_MADE+=("$1")
	ip netns exec "$1" ip link set lo up || die "cannot bring lo up in $1"
	# a page a connection: tens of thousands of TIME_WAITs in a run
	ip netns exec "$1" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" \
		net.ipv4.tcp_tw_reuse=1 >/dev/null 2>&1
	return 0
}

# ------------------------------------------------------------ MariaDB

# a /30 of 100.64.0.0/10 for this run: the host's end .1, the namespace's .2
off=$(( ($$ % 1048576) * 4 ))
VNET=100.$((64 + off / 65536)).$((off / 256 % 256))
VHOST=$VNET.$((off % 256 + 1))
VNS=$VNET.$((off % 256 + 2))
mkns "$NSP-v"
ip link add "$VETH" type veth peer name veth0 netns "$NSP-v" ||
	die "cannot make the veth"
ip addr add "$VHOST/30" dev "$VETH" && ip link set "$VETH" up &&
ip -n "$NSP-v" addr add "$VNS/30" dev veth0 && ip -n "$NSP-v" link set veth0 up ||
	die "cannot address the veth"

# below the ephemeral ports (32768 up): none of the host's connections
# can hold it as its local port
DBPORT=$((13306 + $$ % 500))
while ss -Htan "sport = :$DBPORT" | grep -q .; do DBPORT=$((DBPORT + 1)); done
SOCK=$T/run/mysqld.sock
mkdir "$T/db" "$T/run" && chown mysql: "$T/db" "$T/run" || die "cannot make the datadir"
bg_wait "$T/install.log" "$T/install.err" mariadb-install-db --no-defaults \
	--datadir="$T/db" --user=mysql --auth-root-authentication-method=socket \
	--skip-test-db --innodb-log-file-size=16M ||
	{ tail -5 "$T/install.err" >&2; die "mariadb-install-db failed"; }
# --no-defaults: none of /etc/mysql applies; the address list needs 10.11
start_bg mariadbd "$MARIADBD" --no-defaults --datadir="$T/db" --user=mysql \
	--socket="$SOCK" --port="$DBPORT" --bind-address="127.0.0.1,$VHOST" \
	--pid-file="$T/run/mysqld.pid" --log-error="$T/run/error.log" \
	--skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=64M \
	--innodb-log-file-size=16M --max-connections=2000 \
	--max-connect-errors=1000000000 --tmpdir="$T/run"
db_up() { [ -S "$SOCK" ] && mariadb --no-defaults -S "$SOCK" -u root -e 'SELECT 1' >/dev/null 2>&1; }
wait_for 60 db_up || { tail -5 "$T/run/error.log" >&2; die "mariadbd did not start"; }
ss -Hltn "sport = :$DBPORT" | grep -q "$VHOST" ||
	die "mariadbd does not listen on $VHOST:$DBPORT"
mariadb --no-defaults -S "$SOCK" -u root -e "CREATE DATABASE sbtest;
	CREATE USER 'bench'@'%' IDENTIFIED BY 'bench';
	GRANT ALL ON sbtest.* TO 'bench'@'%';" || die "cannot create the bench user"
SB=(sysbench oltp_point_select --db-driver=mysql --mysql-user=bench
    --mysql-password=bench --mysql-db=sbtest --tables=1 --table-size="$DB_TABLE")
bg_wait "$T/prepare.out" "$T/prepare.err" "${SB[@]}" --mysql-socket="$SOCK" prepare ||
	{ tail -5 "$T/prepare.out" "$T/prepare.err" >&2; die "sysbench prepare failed"; }

start_bg echo "$DBC" serve-echo
wait_for 5 nonempty "$T/echo.out" || die "echo server did not start"
ECHO=$(cat "$T/echo.out")

# ------------------------------------------------------------ proxies

nsrelayd_conf() {	# FILE UPSTREAM NOLIMITS NS...: a config for nsrelayd -f
	local f=$1 up=$2 nolim=$3 ns
	shift 3
	{
		printf 'user: nobody\nnamespaces:\n  all: false\n  names: ['
		ns=$(printf '%s, ' "$@")
		printf '%s]\n' "${ns%, }"
		[ -n "$nolim" ] && printf 'limits: { connections_per_namespace: 0, connections_per_second: 0 }\n'
		printf 'services:\n  mysql:\n    listen: "127.0.0.1:3306"\n'
		printf '    upstream: "%s"\n' "$up"
		[ -n "$nolim" ] && printf '    limits: { connections_per_namespace: 0 }\n'
		if [ $# -gt 1 ]; then
			printf '  echo:\n    listen: "127.0.0.1:7"\n    upstream: "127.0.0.1:%s"\n' "$ECHO"
			printf 'control: { path: "%s" }\n' "$T/control.sock"
		fi
	} >"$f"
	chmod 644 "$f"
}

COLS=(unix-socket veth nsrelayd nsrelayd-unix nsrelayd-nolim haproxy)
declare -A NSOF=([veth]=$NSP-v [nsrelayd]=$NSP-r [nsrelayd-unix]=$NSP-u
		 [nsrelayd-nolim]=$NSP-n [haproxy]=$NSP-h)
HAPV=
if ! command -v "$HAPROXY" >/dev/null 2>&1; then
	SKIP[haproxy]="not installed (apt-get install haproxy)"
elif ! grep -q -- '+NS' <<<"$("$HAPROXY" -vv 2>/dev/null)"; then
	SKIP[haproxy]="built without +NS (bind ... namespace)"
else
	HAPV=$("$HAPROXY" -v 2>/dev/null | head -1 | awk '{print $3}')
fi
for c in "${COLS[@]}"; do
	[ -z "${DB_COLS:-}" ] || [[ " $DB_COLS " == *" $c "* ]] ||
		SKIP[$c]=${SKIP[$c]:-"not in DB_COLS"}
done

start_proxy() {	# COLUMN: its namespace made, its proxy listening there
	local col=$1 ns=${NSOF[$1]:-}
	case $col in
	unix-socket|veth) return 0 ;;
	nsrelayd) nsrelayd_conf "$T/$col.yaml" "127.0.0.1:$DBPORT" "" "$ns" ;;
	nsrelayd-unix) nsrelayd_conf "$T/$col.yaml" "unix:$SOCK" "" "$ns" ;;
	nsrelayd-nolim) nsrelayd_conf "$T/$col.yaml" "127.0.0.1:$DBPORT" 1 "$ns" ;;
	haproxy)
		{
			printf 'global\n    nbthread 1\n    maxconn 4096\n'
			printf '    uid 65534\n    gid 65534\n'
			printf 'defaults\n    mode tcp\n    maxconn 4096\n'
			printf '    timeout connect 5s\n    timeout client 1h\n'
			printf '    timeout server 1h\n'
			printf 'listen mysql\n    bind 127.0.0.1:3306 namespace %s\n' "$ns"
			printf '    server s 127.0.0.1:%s\n' "$DBPORT"
		} >"$T/$col.cfg" ;;
	esac
	mkns "$ns"
	if [ "$col" = haproxy ]; then
		start_bg "$col" "$HAPROXY" -f "$T/$col.cfg" -db
	else
		start_bg "$col" "$NSRELAYD" -f -c "$T/$col.yaml"
	fi
	wait_for 10 listening_in_ns "$ns" 3306
}

# ------------------------------------------------------------ workloads

# in_col COLUMN: IN, what runs a command where the column's clients run
in_col() {
	if [ "$1" = unix-socket ]; then IN=()
	else IN=(ip netns exec "${NSOF[$1]}"); fi
}
target_of() {	# COLUMN: "HOST PORT SOCKET" as the clients see MariaDB
	case $1 in
	unix-socket) echo "localhost 0 $SOCK" ;;
	veth) echo "$VHOST $DBPORT -" ;;
	*) echo "127.0.0.1 3306 -" ;;
	esac
}

bench_sysbench() {	# COLUMN
	local col=$1 host port sock pp c0 c1 q qps p95 args IN
	read -r host port sock <<<"$(target_of "$col")"
	if [ "$sock" != - ]; then args=(--mysql-socket="$sock")
	else args=(--mysql-host="$host" --mysql-port="$port"); fi
	pp=${PID[$col]:-}
	in_col "$col"
	[ -n "$pp" ] && c0=$(cpu_ticks "$pp")
	if ! bg_wait "$T/sb.out" "$T/sb.err" "${IN[@]}" "${SB[@]}" "${args[@]}" \
		--threads="$DB_THREADS" --time="$DB_SECS" --percentile=95 \
		--report-interval=0 run; then
		failed sysbench "$col" "$(tail -3 "$T/sb.err" "$T/sb.out" | head -c 300)"
		return
	fi
	[ -n "$pp" ] && c1=$(cpu_ticks "$pp")
	# "queries:   N (X per sec.)", "95th percentile:   Y"
	read -r q qps <<<"$(awk '$1 == "queries:" {gsub(/\(/, "", $3); print $2, $3}' "$T/sb.out")"
	p95=$(awk '$1 == "95th" {print $3}' "$T/sb.out")
	if [ -z "$q" ] || [ "$q" = 0 ] || grep -q 'FATAL' "$T/sb.out" "$T/sb.err"; then
		failed sysbench "$col" "no queries: $(grep -m1 FATAL "$T/sb.out" "$T/sb.err")"
		return
	fi
	cell qps "$col" "$(printf '%.0f' "$qps")"
	cell p95 "$col" "$p95"
	[ -n "$pp" ] && cell qcpu "$col" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$q" \
		'BEGIN{printf "%.1f", t / hz * 1e6 / n}')"
}

# php_pages NAME COLUMN-OR-NS HOST PORT SOCKET: DB_PHP page loops at once
# (in the namespace NS, or on the host for unix-socket), each DB_SECS s or
# $SECS if set; sets PAGES (pages/s, or empty on failure), PP95, PERR
php_pages() {
	local name=$1 where=$2 host=$3 port=$4 sock=$5 i pids=() rc=0 n e s
	[ "$sock" = - ] && sock=
	for ((i = 0; i < DB_PHP; i++)); do
		if [ "$where" = host ]; then
			php "$T/page.php" "$host" "$port" "$sock" "${SECS:-$DB_SECS}" \
				"$DB_TABLE" "$T/$name.lat$i" >"$T/$name.out$i" 2>"$T/$name.err$i" &
		else
			ip netns exec "$where" php "$T/page.php" "$host" "$port" "$sock" \
				"${SECS:-$DB_SECS}" "$DB_TABLE" "$T/$name.lat$i" \
				>"$T/$name.out$i" 2>"$T/$name.err$i" &
		fi
		pids+=("$!")
		PIDS+=("$!")
	done
	for i in "${pids[@]}"; do wait "$i" || rc=1; forget "$i"; done
	PAGES='' PP95='' PERR=''
	[ "$rc" = 0 ] || { PERR="php failed: $(cat "$T/$name".err* | head -c 300)"; return 1; }
	read -r n e s <<<"$(cat "$T/$name".out* | awk '{n += $1; e += $2; r += $1 / $3}
		END {printf "%d %d %.0f", n, e, r}')"
	if [ "$e" != 0 ] || [ "$n" = 0 ]; then
		PERR="$e errors, $n pages: $(cat "$T/$name".err* | head -1)"
		return 1
	fi
	PAGES=$s
	cat "$T/$name".lat* >"$T/$name.lat"
	PP95=$(pct "$T/$name.lat" 95)
	rm -f "$T/$name".lat?*
}

bench_php() {	# COLUMN
	local col=$1 host port sock pp c0 c1 where=host n
	read -r host port sock <<<"$(target_of "$col")"
	[ "$col" = unix-socket ] || where=${NSOF[$col]}
	pp=${PID[$col]:-}
	[ -n "$pp" ] && c0=$(cpu_ticks "$pp")
	if ! php_pages php "$where" "$host" "$port" "$sock"; then
		failed php "$col" "$PERR"
		return
	fi
	[ -n "$pp" ] && c1=$(cpu_ticks "$pp")
	cell pages "$col" "$PAGES"
	cell pp95 "$col" "$PP95"
	n=$(cat "$T"/php.out* | awk '{n += $1} END {print n}')
	[ -n "$pp" ] && cell pcpu "$col" "$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$n" \
		'BEGIN{printf "%.1f", t / hz * 1e6 / n}')"
}

ROW_W=32		# row(): t/bench/lib.sh
verdict() {	# LABEL VALUE OP BOUND: one line of the targets
	local v
	v=$(awk -v a="$2" -v b="$4" -v op="$3" 'BEGIN {
		if (a == "" || a == "-" || a == "FAIL" || b == "" || b == "-" || b == "FAIL") { print "no figure"; exit }
		ok = op == ">=" ? a + 0 >= b + 0 : a + 0 <= b + 0
		print ok ? "met" : "NOT met" }')
	printf '  %-58s %10s %s %-10s %s\n' "$1" "$2" "$3" "$4" "$v"
}

say "db-bench: $(nproc) CPUs ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), MariaDB $("$MARIADBD" --version | awk '{print $3}'), sysbench $(sysbench --version | awk '{print $2}'), PHP $(php -r 'echo PHP_VERSION;')${HAPV:+, haproxy $HAPV}; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------ lone table

if want_row lone; then
	RUN=()
	for col in "${COLS[@]}"; do
		[ -n "${SKIP[$col]:-}" ] && continue
		if ! start_proxy "$col"; then
			why=$(grep -m1 -iE 'alert|error|fatal' "$T/$col.err" || tail -1 "$T/$col.err")
			SKIP[$col]="did not start: ${why:-no listener on 127.0.0.1:3306 in 10 s}"
			SKIP[$col]=${SKIP[$col]:0:240}
			[ "${col#nsrelayd}" != "$col" ] && { FAILED=1; echo "$BENCH: $col: ${SKIP[$col]}" >&2; }
			continue
		fi
		RUN+=("$col")
	done
	say "db-bench: one namespace, alone; medians of $DB_REPEAT runs of $DB_SECS s, interleaved; sysbench oltp_point_select, $DB_THREADS threads, $DB_TABLE rows; $DB_PHP php-cli page loops (connect, 3 SELECTs by primary key, close)"
	for col in "${COLS[@]}"; do
		[ -n "${SKIP[$col]:-}" ] && say "db-bench: $col skipped: ${SKIP[$col]}"
	done
	# one page and a second of sysbench through each first: every proxy,
	# MariaDB's thread cache and buffer pool past their first allocations
	for col in "${RUN[@]}"; do
		read -r host port sock <<<"$(target_of "$col")"
		where=host
		[ "$col" = unix-socket ] || where=${NSOF[$col]}
		SECS=0.3 DB_PHP=1 php_pages warm "$where" "$host" "$port" "$sock" ||
			failed warm-up "$col" "$PERR"
	done
	for ((rep = 0; rep < DB_REPEAT; rep++)); do
		for col in "${RUN[@]}"; do bench_sysbench "$col"; done
		for col in "${RUN[@]}"; do bench_php "$col"; done
	done
	for k in "${!R[@]}"; do R[$k]=$(median "${R[$k]}"); done
	for col in "${RUN[@]}"; do
		[ -z "${PID[$col]:-}" ] || alive "${PID[$col]}" ||
			{ FAILED=1; echo "$BENCH: $col died" >&2; }
	done
	echo
	printf '%-32s' row
	for c in "${COLS[@]}"; do printf ' %14s' "$c"; done
	printf '\n'
	row "sysbench queries/s" qps
	row "  x haproxy" qps ratio haproxy
	row "  x unix-socket" qps ratio unix-socket
	row "sysbench p95 ms" p95
	row "proxy CPU us per query" qcpu
	row "PHP pages/s" pages
	row "  x haproxy" pages ratio haproxy
	row "  x nsrelayd-nolim" pages ratio nsrelayd-nolim
	row "  x unix-socket" pages ratio unix-socket
	row "page p95 ms" pp95
	row "proxy CPU us per page" pcpu
	echo
	say "targets, lone namespace, nsrelayd defaults (figures to read, not a pass/fail):"
	verdict "PHP pages/s x haproxy" "$(ratio pages nsrelayd haproxy)" ">=" 1.0
	verdict "PHP pages/s x nsrelayd-nolim" "$(ratio pages nsrelayd nsrelayd-nolim)" ">=" 0.95
	verdict "sysbench queries/s x haproxy" "$(ratio qps nsrelayd haproxy)" ">=" 1.0
	# the lone columns' processes are done with: stop them before the
	# contention phases, so that they cost nothing there
	for col in "${RUN[@]}"; do
		[ -n "${PID[$col]:-}" ] && stop_pid "${PID[$col]}"
	done
fi

# ------------------------------------------------------------ contention

if want_row contention; then
	NA=$NSP-a
	NB=$NSP-b
	mkns "$NA"
	mkns "$NB"
	nsrelayd_conf "$T/contention.yaml" "127.0.0.1:$DBPORT" "" "$NA" "$NB"
	start_bg contention "$NSRELAYD" -f -c "$T/contention.yaml"
	for ns in "$NA" "$NB"; do
		for p in 3306 7; do
			wait_for 10 listening_in_ns "$ns" "$p" ||
				{ cat "$T/contention.err" >&2; die "nsrelayd did not listen in $ns"; }
		done
	done
	CP=${PID[contention]}
	declare -A C
	cfail() { C[$1]=FAIL; FAILED=1; echo "$BENCH: contention: $1: $2" >&2; }
	SECS=0.3 DB_PHP=1 php_pages warm "$NB" 127.0.0.1 3306 - ||
		cfail warm-up "$PERR"

	phase() {	# PHASE (quiet storm both): what runs in it, DB_CSECS s
		local ph=$1 sp='' pp='' c0 c1 n e r rc
		c0=$(cpu_ticks "$CP")
		if [ "$ph" != quiet ]; then
			ip netns exec "$NA" "$DBC" storm 7 "$DB_CSECS" "$DB_STORM" \
				>"$T/storm.out" 2>"$T/storm.err" &
			sp=$!
			PIDS+=("$sp")
		fi
		if [ "$ph" != storm ]; then
			ip netns exec "$NB" "$DBC" ping 7 "$DB_CSECS" \
				>"$T/ping.out" 2>"$T/ping.err" &
			pp=$!
			PIDS+=("$pp")
			if SECS=$DB_CSECS php_pages "c$ph" "$NB" 127.0.0.1 3306 -; then
				C[pages,$ph]=$PAGES
			else
				cfail "pages,$ph" "$PERR"
			fi
			wait "$pp"; rc=$?; forget "$pp"
			if [ "$rc" = 0 ]; then
				read -r n C[p50,$ph] C[p99,$ph] C[p999,$ph] C[pmax,$ph] <"$T/ping.out"
			else
				cfail "ping,$ph" "$(head -c 300 "$T/ping.err")"
			fi
		fi
		if [ -n "$sp" ]; then
			wait "$sp"; rc=$?; forget "$sp"
			if [ "$rc" = 0 ]; then
				read -r n e r <"$T/storm.out"
				C[storm,$ph]=$r
				C[stormerr,$ph]=$e
			else
				cfail "storm,$ph" "$(head -c 300 "$T/storm.err")"
			fi
		fi
		c1=$(cpu_ticks "$CP")
		C[cpu,$ph]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v s="$DB_CSECS" \
			'BEGIN{printf "%.0f", t / hz / s * 100}')
	}
	phase quiet
	phase storm
	phase both
	alive "$CP" || { FAILED=1; echo "$BENCH: contention: nsrelayd died" >&2; }
	crow() {	# LABEL KEY
		printf '%-32s %14s %14s %14s\n' "$1" "${C[$2,quiet]:--}" \
			"${C[$2,storm]:--}" "${C[$2,both]:--}"
	}
	echo
	say "db-bench: contention, one nsrelayd (defaults) serving $NA and $NB, phases of $DB_CSECS s; A: $DB_STORM loops of (connect, 64 B echo, close); B: $DB_PHP PHP page loops and a ping-pong (64 B, one a ms)"
	printf '%-32s %14s %14s %14s\n' row "B alone" "A alone" "A and B"
	crow "B PHP pages/s" pages
	crow "B ping-pong p50 us" p50
	crow "B ping-pong p99 us" p99
	crow "B ping-pong p99.9 us" p999
	crow "B ping-pong max us" pmax
	crow "A storm conns/s" storm
	crow "A storm failed connections" stormerr
	crow "nsrelayd CPU %" cpu
	echo
	p99q=${C[p99,quiet]:-}
	bound=$(awk -v q="$p99q" 'BEGIN { if (q == "" || q == "FAIL") print "-";
		else printf "%.0f", (2 * q > 20000 ? 2 * q : 20000) }')
	crat() {	# KEY PHASE BASEPHASE
		awk -v a="${C[$1,$2]:-}" -v b="${C[$1,$3]:-}" 'BEGIN {
			if (a == "" || b == "" || a == "FAIL" || b == "FAIL" || b <= 0) print "-";
			else printf "%.2f", a / b }'
	}
	# what the daemon saw: holds and accept waits over the three phases
	if [ -x "$NSRELAYCTL" ] && command -v python3 >/dev/null &&
	   "$NSRELAYCTL" -s "$T/control.sock" -t 5 stats --json >"$T/stats.json" 2>/dev/null; then
		python3 - "$T/stats.json" "$NA" "$NB" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
for ns in d.get("namespaces", []):
    n = ns.get("name")
    if n not in sys.argv[2:]:
        continue
    w = ns.get("accept_wait") or {}
    held = ", ".join("%s %s" % kv for kv in (ns.get("held") or {}).items())
    p = lambda v: "-" if v is None else "%g s" % v
    print("nsrelayd's stats, %s (%s): %s accepts, wait p50 <= %s, p99 <= %s; held: %s"
          % ("A" if n == sys.argv[2] else "B", n, w.get("count"), p(w.get("p50")),
             p(w.get("p99")), held or "-"))
PY
		echo
	fi
	say "targets under A's storm, nsrelayd defaults (figures to read, not a pass/fail):"
	verdict "B ping-pong p99 us (<= max(2 x quiet, 20 ms))" "${C[p99,both]:--}" "<=" "$bound"
	verdict "B pages/s x quiet" "$(crat pages both quiet)" ">=" 0.45
	verdict "A conns/s x alone" "$(crat storm both storm)" ">=" 0.4
fi
say "db-bench: load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$FAILED"
