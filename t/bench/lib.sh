# SPDX-License-Identifier: MIT
# t/bench/lib.sh: what every bench shares.  A bench sets BENCH (its name,
# for messages) and STOP_WAIT (seconds a process of its own gets between
# SIGTERM and SIGKILL), then sources this file, which sets T (empty until
# bench_tmp), PIDS (the processes it started: the only ones ever
# signalled) and FAILED, and installs the exit trap: every PID in PIDS is
# stopped, then bench_teardown runs if the bench has defined it by then,
# then the temporary directory goes (KEEP_TMP=1 keeps it).

T=
PIDS=()
FAILED=0
: "${STOP_WAIT:=2}"

say() { printf '%s\n' "$*"; }
die() { echo "$BENCH: $*" >&2; exit 1; }
skip_all() { echo "$BENCH: skipped: $*"; exit 77; }

stop_pid() {	# TERM, up to STOP_WAIT s, then KILL; only PIDs we started
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	for ((i = 0; i < STOP_WAIT * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

wait_for() {	# wait_for SECS CMD...: poll every 50 ms, bounded
	local i n
	n=$(awk -v s="$1" 'BEGIN{printf "%d", s * 20}')
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

bench_cc() {	# bench_cc NAME [CFLAGS...]: $T/NAME from $T/NAME.c, or die
	local name=$1
	shift
	gcc -O2 -Wall -Wextra -I"$top_srcdir/t/bench" "$@" -o "$T/$name" \
		"$T/$name.c" 2>"$T/gcc.err" || {
		cat "$T/gcc.err" >&2
		die "cannot compile $name"
	}
}

# a process of ours, by PID
alive() { kill -0 "$1" 2>/dev/null; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
fds_at_most() { [ "$(nfds "$1")" -le "$2" ]; }

bench_tmp() {	# bench_tmp MODE: T, a fresh temporary directory
	T=$(mktemp -d "/tmp/$BENCH.XXXXXX") || die "mktemp failed"
	chmod "$1" "$T"
}

bench_cleanup() {
	local rc=$? pid
	trap - EXIT HUP INT TERM
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	if declare -F bench_teardown >/dev/null; then bench_teardown; fi
	if [ -n "$T" ]; then
		if [ -n "${KEEP_TMP:-}" ]; then echo "$BENCH: kept $T" >&2
		else rm -rf "$T"; fi
	fi
	exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# The table of a bench: R[KEY,COLUMN] holds the figures, COLS the columns,
# SKIP[COLUMN] why a column did not run; ROW_W the label's width.
ratio() {	# KEY COLUMN BASECOLUMN: R[KEY,COLUMN] / R[KEY,BASECOLUMN], or -
	local a=${R[$1,$2]:-} b=${R[$1,$3]:-}
	case "$a$b" in *FAIL*|*-*|'') echo -; return ;; esac
	[ -z "$a" ] || [ -z "$b" ] && { echo -; return; }
	awk -v a="$a" -v b="$b" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }'
}
row() {	# LABEL KEY [ratio BASE]
	local label=$1 key=$2 base=${4:-} c v
	printf "%-${ROW_W:-36}s" "$label"
	for c in "${COLS[@]}"; do
		if [ -n "${SKIP[$c]:-}" ]; then v=skipped
		elif [ -n "$base" ]; then v=$(ratio "$key" "$c" "$base")
		else v=${R[$key,$c]:--}; fi
		printf ' %14s' "$v"
	done
	printf '\n'
}
