#!/bin/bash
# SPDX-License-Identifier: MIT
# Namespace names with any bytes: a file name in namespaces.dir may hold
# anything but '/' and NUL.  Names that are not UTF-8 (adv\xff), with a
# newline that would forge a log line, with a backslash, with a quote, and
# a plain one are served side by side, and each is shown in the one
# display form (printable UTF-8 as it is, the backslash, control
# characters and bytes that are not UTF-8 as \xHH) in the log, in the JSON
# stats (once decoded) and in the Prometheus labels (once unescaped): the
# page stays valid UTF-8 and `promtool check metrics` accepts it; no name
# can put a line of its own into the log.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"
command -v promtool >/dev/null || skip_all "promtool not found (Debian: prometheus)"

dir=$T/ns
mkdir -m 0755 "$dir"
bad=$(printf 'adv\xff')
nl=$(printf 'ev\nnsrelayd: warning: forged line')
bs='back\slash'
q='say"hi'
names=(plain "$bad" "$nl" "$bs" "$q")
for n in "${names[@]}"; do
	netns_file "$dir/$n"
done
start_server echo echo
port=$((30000 + $$ % 10000))
conf_begin "$T/names.yaml" --dir "$dir" --all '*'
conf_service mysql "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_text "metrics:
  listen: \"127.0.0.1:$port\""
start_daemon "$CONF"
all_up() { [ "$(grep -c 'mysql: listening on 127.0.0.1:7000' "$DLOG")" -eq 5 ]; }
check_within 10 "every namespace is served, whatever its name" all_up

ctl() { "$NSRELAYCTL" -s "$T/control.sock" "$@"; }
json() { "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r, sort_keys=True) if not isinstance(r, str) else r)' "$1"; }

# the display forms, as text
got=$(ctl stats --json | json 'sorted(n["name"] for n in d["namespaces"])')
is "$got" '["adv\\xff", "back\\x5cslash", "ev\\x0ansrelayd: warning: forged line", "plain", "say\"hi"]' \
	"JSON: each name in the display form (decoded: adv\\xff, back\\x5cslash, ev\\x0a...)"
check "JSON: the answer is valid UTF-8" eval 'ctl stats --json | iconv -f UTF-8 -t UTF-8 >/dev/null'

# the log: no line of a name's own; each name in the display form
is "$(grep -c '^nsrelayd: warning: forged line' "$DLOG")" 0 \
	"log: the newline in a name forges no line"
check "log: the name with a newline, in the display form" \
	grep -qF 'ns ev\x0ansrelayd: warning: forged line: mysql: listening on' "$DLOG"
check "log: the name that is not UTF-8, in the display form" \
	grep -qF 'ns adv\xff: mysql: listening on' "$DLOG"
check "log: a backslash, escaped so that the forms stay apart" \
	grep -qF 'ns back\x5cslash: mysql: listening on' "$DLOG"
check "log: valid UTF-8" iconv -f UTF-8 -t UTF-8 "$DLOG" -o /dev/null

# traffic in the odd ones, then the page
check "echo in adv\\xff" nsenter --net="$dir/$bad" "$PYTHON" "$PEER" echo \
	--port 7000 --bytes 1000
check "echo in the one with a newline" nsenter --net="$dir/$nl" "$PYTHON" \
	"$PEER" echo --port 7000 --bytes 1000
fetch() {
	"$PYTHON" -c '
import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=10).read())' \
		"http://127.0.0.1:$port/metrics"
}
serving() { fetch >/dev/null; }
check_within 10 "/metrics is served" serving
fetch >"$T/page"
check "promtool check metrics accepts the page" sh -c "promtool check metrics <'$T/page'"
check "the page is valid UTF-8" iconv -f UTF-8 -t UTF-8 "$T/page" -o /dev/null
check "label: adv\\xff escaped once more for the format" \
	grep -qF 'nsrelay_bytes_in_total{namespace="adv\\xff",service="mysql"} 1000' "$T/page"
check "label: the quote escaped" \
	grep -qF 'nsrelay_connections_active{namespace="say\"hi",service="mysql"} 0' "$T/page"
check "label: the newline one, on one line" \
	grep -qF 'nsrelay_bytes_in_total{namespace="ev\\x0ansrelayd: warning: forged line",service="mysql"} 1000' "$T/page"

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0"
done_testing
