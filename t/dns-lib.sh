# SPDX-License-Identifier: MIT
# dns-lib.sh: what the udp tests share (t/udp-dns.t, t/udp-load.t), after
# t/lib.sh and tap_init: dnsmasq, dig and ss or skip; nsrelayctl and
# dnsq.py; a dnsmasq of the test's own on 127.0.0.1 (start_dnsmasq).
: "${NSRELAYCTL:=$top_builddir/nsrelayctl}"
[ -x "$NSRELAYCTL" ] || bail "nsrelayctl not found: $NSRELAYCTL"
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || skip_all "dnsmasq not found (Debian: dnsmasq-base)"
command -v dig >/dev/null || skip_all "dig not found (Debian: bind9-dnsutils)"
command -v ss >/dev/null || skip_all "ss (iproute2) not found"
DNSQ=$top_srcdir/t/tools/dnsq.py

ctl() { "$NSRELAYCTL" -s "$T/control.sock" "$@"; }
dnsq_in() { local ns=$1; shift; ip netns exec "$ns" "$PYTHON" "$DNSQ" "$@"; }

# The Python both stats readers share: svc(ns, name) a service's object of
# the stats d; c(s, KEY[, SECTION]) a counter of its "closed" (or of
# SECTION, e.g. "drops"), by its name there ("idle-timeout": a name that
# is not there fails the expression);
# each(NS, name) the service's object in each namespace of NS.
_DNS_PY='import json, sys
d = json.load(sys.stdin)
def svc(ns, name):
    return [s for n in d["namespaces"] if n["name"] == ns
            for s in n["services"] if s["name"] == name][0]
def c(s, k, sect="closed"):
    return s[sect][k]
def each(ns_list, name):
    return [svc(ns, name) for ns in ns_list]
def out(r):
    print(r if isinstance(r, str) else json.dumps(r, sort_keys=True))
'
# stats EXPR [NS...]: EXPR over the stats d, NS the list of the NS given
stats() {
	ctl stats --json | "$PYTHON" -c "$_DNS_PY"'
NS = sys.argv[2:]
out(eval(sys.argv[1]))' "$@"
}
stats_true() { [ "$(stats "$@")" = true ]; }

free_port() {	# a port free for both UDP and TCP on 127.0.0.1, right now
	"$PYTHON" -c 'import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break'
}

# start_dnsmasq [ARGS...]: dnsmasq on 127.0.0.1 at a free port, DP, with
# the record db.internal -> 10.0.0.1 and ARGS; one TAP point once it
# answers (a port taken meanwhile: another port, three times at most).
dnsmasq_answers() {
	[ "$(dig @127.0.0.1 -p "$DP" db.internal +short +time=1 +tries=1)" = 10.0.0.1 ]
}
start_dnsmasq() {
	local attempt pid_var
	DP=
	for attempt in 1 2 3; do
		DP=$(free_port) || bail "no free port"
		start_bg "dnsmasq$attempt" "$DNSMASQ" --conf-file=/dev/null \
			--no-resolv --no-hosts --keep-in-foreground \
			--bind-interfaces --listen-address=127.0.0.1 \
			--port="$DP" --user=nobody --pid-file= \
			--host-record=db.internal,10.0.0.1 "$@"
		wait_for 5 dnsmasq_answers && break
		pid_var=dnsmasq${attempt}_pid
		stop_pid "${!pid_var}"
		DP=
	done
	[ -n "$DP" ] || bail "dnsmasq did not start: $(cat "$T"/dnsmasq*.err)"
	pass "dnsmasq answers on 127.0.0.1:$DP"
}
