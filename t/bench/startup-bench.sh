#!/bin/bash
# SPDX-License-Identifier: MIT
# t/bench/startup-bench.sh: nsrelayd's start-up with N provisioned users,
# and N provision/deprovision calls through its control socket.  Prints
# figures; asserts nothing.
#
# Usage: t/bench/startup-bench.sh [N]     (default 1000, at most 2000; root)
# Env:   NSRELAYD (default $top_builddir/nsrelayd), START_CONC (control
#        clients at once for the concurrent rows, default 8), SB_PERF=KEY
#        (profile the daemon with `perf record -g` during the row KEY:
#        noop_seq, deprov_seq, prov_seq, deprov_conc, prov_conc; into
#        SB_PERF_OUT, default /tmp/startup-bench.KEY.perf), SB_TMPFS=1 (the
#        namespaces in a tmpfs of the bench's own instead of /run/netns:
#        where /run is on disk, as on some virtual machines, creating each
#        namespace's file costs the file system's inode allocation; Debian
#        has /run on tmpfs).
#
# N throwaway users nsrsb0.. (uids 41000.., index = uid - 31000, so
# 10000..: clear of the other benches and tests; host ends nsu<index>) are
# listed in provision.users; one service listens on 127.0.0.1:7600 in each
# namespace.  Rows, in this order, on one machine:
#   start, created    nsrelayd starts with none of the namespaces there and
#                     creates them all; until every namespace's listener
#                     accepts a connection (a probe enters each namespace
#                     with setns(2) and connects, over and over);
#   start, adopted    SIGTERM, start again: everything is in the kernel
#                     already and is adopted; until every listener accepts;
#   then N requests through the control socket, from one client (each
#   waits for its answer) or from START_CONC clients at once: provision
#   (already there: no netlink work), deprovision, provision (real work),
#   and deprovision and provision again from START_CONC clients.  A
#   deprovision is answered once the namespace's file is gone (as `ip netns
#   del` returns); its rows also say when the kernel had taken the last
#   veth with its namespace.
# The users are written to /etc/passwd and /etc/shadow under lckpwdf(3), the
# lock useradd and userdel take (one useradd or userdel costs 0.2-0.3 s here:
# 2,000 of them would take longer than the bench), and removed the same way
# at exit, with everything else the bench made.
# Exit status: 0; 1 if a step failed; 77 if it cannot run here.

set -u
set -o pipefail

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${NSRELAYD:=$top_builddir/nsrelayd}"
: "${START_CONC:=8}"
: "${SB_PERF:=}"
: "${SB_PERF_OUT:=/tmp/startup-bench.$SB_PERF.perf}"
: "${SB_TMPFS:=}"
NSDIR=/run/netns
TMPFS=
N=${1:-1000}
UID0=41000			# uids UID0..UID0+N-1
UID_BASE=31000			# index = uid - UID_BASE: 10000..
PREFIX=nsrsb			# user = namespace name: nsrsb<k>
PORT=7600
USERS_MADE=
DPID=
BENCH=startup-bench
STOP_WAIT=10
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
		grep -E "^nsu1[01][0-9]{3}\$"
}

bench_teardown() {
	local i
	for i in "$NSDIR/$PREFIX"*; do
		[ -e "$i" ] && [ ! -L "$i" ] || continue
		umount "$i" 2>/dev/null
		rm -f "$i"
	done
	[ -n "$TMPFS" ] && umount "$NSDIR"
	for i in $(our_links); do ip link del "$i" 2>/dev/null; done
	[ -n "$USERS_MADE" ] && python3 "$T/users.py" del "$PREFIX" "$UID0" "$N"
}

bench_tmp 711
if [ -n "$SB_TMPFS" ]; then
	mkdir -m 0755 "$T/netns" && mount -t tmpfs -o mode=0755 nsrsb "$T/netns" ||
		die "cannot mount a tmpfs on $T/netns"
	NSDIR=$T/netns
	TMPFS=1
fi

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

# probe PORT LIST: every namespace named in LIST (one a line, in $NSDIR)
# has a listener on 127.0.0.1:PORT that accepts: enter each with setns(2),
# connect, close; again every 20 ms for those that did not, at most 600 s.
# Prints the seconds it took and exits 0, or 1.
cat >"$T/probe.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	const char *dir = getenv("NSDIR") ? getenv("NSDIR") : "/run/netns";
	char **name = NULL, line[256], path[4096];
	size_t n = 0, left;
	double t0 = now();
	FILE *f;

	if (argc != 3 || !(f = fopen(argv[2], "r")))
		return 2;
	a.sin_port = htons(atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		name = realloc(name, (n + 1) * sizeof(*name));
		name[n++] = strdup(line);
	}
	left = n;
	while (left && now() - t0 < 600) {
		for (size_t i = 0; i < n; i++) {
			int nsfd, s, ok;

			if (!name[i])
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, name[i]);
			nsfd = open(path, O_RDONLY | O_CLOEXEC);
			if (nsfd < 0)
				continue;
			ok = setns(nsfd, CLONE_NEWNET) == 0;
			close(nsfd);
			if (!ok)
				continue;
			s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
				name[i] = NULL;
				left--;
			}
			if (s >= 0)
				close(s);
		}
		if (left)
			usleep(20000);
	}
	printf("%.3f\n", now() - t0);
	if (left)
		fprintf(stderr, "probe: %zu namespaces not accepting\n", left);
	return left ? 1 : 0;
}
EOF
bench_cc probe

# ------------------------------------------------------------------ set-up

for ((k = 0; k < N; k++)); do
	! getent passwd "$PREFIX$k" >/dev/null || die "user $PREFIX$k exists already"
	[ ! -e "$NSDIR/$PREFIX$k" ] || die "namespace $PREFIX$k exists already"
	echo "$PREFIX$k"
done >"$T/names"
[ -z "$(our_links)" ] || die "links nsu1xxxx exist already: remove them first"
python3 "$T/users.py" add "$PREFIX" "$UID0" "$N" || die "cannot create the users"
USERS_MADE=1

# the upstream: anything that accepts (the probe only connects)
python3 -c 'import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4096)
print(s.getsockname()[1], flush=True)
s.settimeout(1)
end = time.monotonic() + 1800
while time.monotonic() < end:
    try:
        s.accept()[0].close()
    except socket.timeout:
        pass' >"$T/up.out" 2>"$T/up.err" &
PIDS+=("$!")
wait_for 5 test -s "$T/up.out" || die "the upstream did not start"
UP=$(cat "$T/up.out")

{
	cat <<EOF
user: nobody
namespaces:
  dir: $NSDIR
  all: true
  match: "$PREFIX*"
services:
  echo:
    listen: "127.0.0.1:$PORT"
    upstream: "127.0.0.1:$UP"
provision:
  uid_base: $UID_BASE
  namespace: "%u"
  host_interface: "nsu%i"
  control: $T/control.sock
  users:
EOF
	sed 's/^/    - /' "$T/names"
} >"$T/nsrelay.yaml"

start_daemon() {	# start nsrelayd (DPID); probe; R[$1] = the probe's seconds
	local t
	"$NSRELAYD" -f -c "$T/nsrelay.yaml" >>"$T/nsrelayd.log" 2>&1 &
	DPID=$!
	PIDS+=("$DPID")
	if t=$(NSDIR=$NSDIR "$T/probe" "$PORT" "$T/names" 2>>"$T/probe.err"); then
		R[$1]=$t
	else
		R[$1]=FAIL
		FAILED=1
		echo "startup-bench: $1: $(tail -1 "$T/probe.err")" >&2
	fi
}

declare -A R
links_gone() { [ -z "$(our_links)" ]; }
ctl() {	# ctl KEY VERB CONC: N requests; R[KEY] = seconds (FAIL on error)
	local secs errs perf= t0
	if [ "$SB_PERF" = "$1" ] && command -v perf >/dev/null; then
		perf record -q -g -p "$DPID" -o "$SB_PERF_OUT" 2>"$T/perf.err" &
		perf=$!
		PIDS+=("$perf")
	fi
	t0=$(date +%s.%N)
	read -r secs errs < <(python3 "$T/ctl.py" "$T/control.sock" "$2" \
		"$PREFIX" "$N" "$3" 2>"$T/ctl.$1.err")
	if [ -n "$perf" ]; then
		kill -INT "$perf" 2>/dev/null
		wait "$perf" 2>/dev/null
	fi
	if [ "${errs:-1}" != 0 ]; then
		FAILED=1
		R[$1]=FAIL
		echo "startup-bench: $1: ${errs:-?} errors: $(head -c 300 "$T/ctl.$1.err")" >&2
		return
	fi
	R[$1]=$secs
	# the answers come once the files are gone; the veths go with the
	# kernel's teardown of the namespaces: until the last one has gone
	if [ "$2" = deprovision ]; then
		wait_for 120 links_gone &&
			R[$1_gone]=$(awk -v a="$t0" -v b="$(date +%s.%N)" \
				'BEGIN{printf "%.3f", b - a}')
	fi
}

# ------------------------------------------------------------------ run

say "startup-bench: $(nproc) CPUs, kernel $(uname -r), N=$N users, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_daemon start_fresh
stop_pid "$DPID"
start_daemon start_adopt
wait_for 10 test -S "$T/control.sock" || die "no control socket"
ctl noop_seq provision 1
ctl deprov_seq deprovision 1
ctl prov_seq provision 1
ctl deprov_conc deprovision "$START_CONC"
ctl prov_conc provision "$START_CONC"
ctl deprov_end deprovision "$START_CONC"
kill -0 "$DPID" 2>/dev/null || { FAILED=1; echo "startup-bench: nsrelayd died" >&2; tail -5 "$T/nsrelayd.log" >&2; }

per() {	# per SECONDS: milliseconds per namespace or request
	awk -v s="$1" -v n="$N" 'BEGIN{ if (s ~ /^[0-9.]+$/) printf "%.2f", s * 1000 / n; else print "-" }'
}
row() {	# row LABEL KEY
	printf '%-50s %9s %9s\n' "$1" "${R[$2]:--}" "$(per "${R[$2]:--}")"
}
echo
printf '%-50s %9s %9s\n' "" seconds "ms each"
row "start, $N namespaces created, until all accept" start_fresh
row "start, $N namespaces adopted, until all accept" start_adopt
row "provision x$N, already there, 1 client" noop_seq
row "deprovision x$N, 1 client" deprov_seq
row "  ... until the kernel has taken every veth" deprov_seq_gone
row "provision x$N, 1 client" prov_seq
row "deprovision x$N, $START_CONC clients" deprov_conc
row "  ... until the kernel has taken every veth" deprov_conc_gone
row "provision x$N, $START_CONC clients" prov_conc
exit "$FAILED"
