#!/bin/bash
# SPDX-License-Identifier: MIT
# Two processes: the engine, which holds every client's socket, has no
# capability in any set, no_new_privs and its seccomp filter, with
# provisioning off and on; the privileged helper keeps root with exactly
# CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE (and CAP_NET_ADMIN with
# provisioning), no_new_privs and a filter of its own.  The engine can no
# longer open a root-only unix upstream (EACCES, logged) while one its user
# may open works.  The helper's gate refuses, each with a logged reason and
# an error back, what provisioning may not do: deleting the host's lo or
# uplink, bringing up a link by index, an address outside the pools, a
# route on the host, a message type it never sends, a namespace outside the
# template; what it may do goes through.  Killing the helper stops the
# daemon with a non-zero status at once, killing the engine ends the
# helper; a restart after such a death adopts the provisioned namespace
# without touching its links.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
NSPRIV=$top_builddir/t/tools/nspriv
[ -x "$NSPRIV" ] || bail "nspriv not found: $NSPRIV"

status_of() {	# status_of PID FIELD: /proc/PID/status's FIELD
	awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status"
}
helper_of() {	# helper_of PID: the one child of PID
	local f stat
	for f in /proc/[0-9]*/stat; do
		stat=$(cat "$f" 2>/dev/null) || continue
		stat=${stat##*) }
		# shellcheck disable=SC2086
		set -- $stat
		[ "$2" = "$DPID" ] || continue
		f=${f#/proc/}
		echo "${f%/stat}"
		return 0
	done
	return 1
}
zero=0000000000000000
check_engine() {	# check_engine DESC
	local f bad=
	for f in CapInh CapPrm CapEff CapBnd CapAmb; do
		[ "$(status_of "$DPID" $f)" = "$zero" ] ||
			bad="$bad $f=$(status_of "$DPID" $f)"
	done
	is "$bad" "" "$1: the engine has no capability in any set"
	is "$(status_of "$DPID" NoNewPrivs)" 1 "$1: ... no_new_privs"
	is "$(status_of "$DPID" Seccomp)" 2 "$1: ... a seccomp filter"
	is "$(status_of "$DPID" Uid | cut -f1)" 65534 "$1: ... runs as nobody"
}
check_helper() {	# check_helper DESC CAPEFF
	local h
	h=$(helper_of) || { fail "$1: the helper is the engine's child"; return; }
	pass "$1: the helper is the engine's child (pid $h)"
	is "$(status_of "$h" Uid | cut -f1)" 0 "$1: the helper is root"
	is "$(status_of "$h" CapEff)" "$2" "$1: ... with exactly its capabilities"
	is "$(status_of "$h" CapBnd)" "$2" "$1: ... and nothing more in its bounding set"
	is "$(status_of "$h" NoNewPrivs)" 1 "$1: ... no_new_privs"
	is "$(status_of "$h" Seccomp)" 2 "$1: ... its own seccomp filter"
}

# ---- without provisioning -------------------------------------------------
netns_new NS
start_server echo echo
mkdir -m 0755 "$T/sock"
start_bg rootonly "$PYTHON" "$PEER" serve echo --unix "$T/sock/root.sock" --mode 0600
start_bg anyone "$PYTHON" "$PEER" serve echo --unix "$T/sock/any.sock" --mode 0666
wait_for 10 _has_line "$rootonly_out" || bail "unix upstream did not start"
wait_for 10 _has_line "$anyone_out" || bail "unix upstream did not start"
conf_begin "$T/plain.yaml" "$NS"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_service rootonly "unix:$T/sock/root.sock" 127.0.0.1:7001
conf_service anyone "unix:$T/sock/any.sock" 127.0.0.1:7002
daemon_up "$CONF"
check_engine "no provisioning"
check_helper "no provisioning" 0000000000200400
check "the relay works from the engine's sockets" \
	peer_in "$NS" echo --port 7000 --bytes 64KiB
check "a unix upstream the daemon's user may open works" \
	peer_in "$NS" echo --port 7002 --bytes 1KiB
check "a root-only unix upstream (0600 root) is refused to the engine" \
	peer_in "$NS" expect-close --port 7001 --within 5 --reset
check_within 5 "... and logged: Permission denied" \
	grep -q "rootonly: upstream unix:$T/sock/root.sock: connect: Permission denied" "$DLOG"

# killing the helper stops the daemon, non-zero, at once
h=$(helper_of)
t0=$(_now_us)
kill -KILL "$h"
wait_for 5 _gone "$DPID"
ms=$(( ($(_now_us) - t0) / 1000 ))
_gone "$DPID" || kill -KILL "$DPID"	# the point fails; never wait for ever
wait "$DPID" 2>/dev/null
st=$?
cmp_ok "$ms" -lt 1000 "killing the helper stops the daemon within 1 s ($ms ms)"
cmp_ok "$st" -ne 0 "... with a non-zero status ($st)"
check "... saying why" grep -q "the privileged helper exited" "$DLOG"

# killing the engine ends the helper
daemon_up -d "started again" "$CONF"
h=$(helper_of)
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
gone() { [ ! -e "/proc/$h" ] || grep -q '^State:.*Z' "/proc/$h/status" 2>/dev/null; }
t0=$(_now_us)
wait_for 5 gone
ms=$(( ($(_now_us) - t0) / 1000 ))
cmp_ok "$ms" -lt 1000 "killing the engine ends the helper within 1 s ($ms ms)"

# ---- with provisioning ----------------------------------------------------
pool_claim B UB
pre="nsps-$$-"
u=nsps$$
uid=$((UB + B))
user_add "$u" "$uid"
netns_adopt "$pre$u"
link_adopt "nsp$B"
conf_begin "$T/prov.yaml" --control none --all "$pre*"
conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_text <<EOF
control:
  path: $T/control.sock
provision:
  users: [$u]
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "nsp%i"
EOF
daemon_up -d "provisioning: started" "$CONF"
check_within 20 "provisioning: the user's namespace is served" \
	wait_listening "$pre$u" 127.0.0.1:7000 1
check_engine "provisioning"
check_helper "provisioning" 0000000000201400
check "provisioning: relayed inside the provisioned namespace" \
	peer_in "$pre$u" echo --port 7000 --bytes 4KiB

# the gate, through a helper of its own with the same config
gate() { "$NSPRIV" "$CONF" "$@" 2>>"$T/nspriv.err"; }
like "$(gate dellink lo)" "^error 1: gate: RTM_DELLINK: lo is not a veth of the template nsp%i" \
	"gate: deleting the host's lo is refused, with the reason"
uplink=$(ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
[ -n "$uplink" ] || uplink=eth0
like "$(gate dellink "$uplink")" "^error 1: gate: RTM_DELLINK: $uplink is not a veth" \
	"gate: deleting the host's uplink ($uplink) is refused"
like "$(gate up-index 1)" "^error 1: gate: RTM_NEWLINK on the host: by index" \
	"gate: a host link by index is refused"
like "$(gate addaddr 192.0.2.1/30)" "^error 1: gate: RTM_NEWADDR: 192.0.2.1 is outside the pool" \
	"gate: an address outside the pools is refused"
like "$(gate route-host 100.64.0.1)" "^error 1: gate: RTM_NEWROUTE on the host" \
	"gate: a route on the host is refused"
like "$(gate newrule)" "^error 1: gate: message type 32 is not one provisioning sends" \
	"gate: a message type outside its list is refused"
like "$(gate nsopen "other-$$")" "^error 1: other-$$ is not a name of the namespace template $pre%u" \
	"gate: a namespace outside the template is refused"
is "$(gate getlink)" "ok" "gate: what provisioning does (a link dump) goes through"
check "gate: each refusal is logged by the helper" \
	test "$(grep -c 'helper: .*refused' "$T/nspriv.err")" -ge 7
ip link show lo >/dev/null && ip link show "$uplink" >/dev/null
ok $? "gate: lo and $uplink are still there"

# a restart after the engine's death adopts the namespace as it is
idx() { cat "/sys/class/net/$1/ifindex" 2>/dev/null; }
host_if="nsp$B"
before=$(idx "$host_if")
peer_before=$(ip -n "$pre$u" -o link show veth0 2>/dev/null | cut -d: -f1)
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
daemon_up -d "provisioning: restarted after a kill" "$CONF"
again() { grep -q "ns $pre$u: provisioned for $u" "$DLOG"; }
check_within 20 "provisioning: the namespace is provisioned again" again
is "$(idx "$host_if")" "$before" "provisioning: the host veth was not re-created"
is "$(ip -n "$pre$u" -o link show veth0 2>/dev/null | cut -d: -f1)" "$peer_before" \
	"provisioning: nor its peer"
check "provisioning: served after the restart" \
	peer_in "$pre$u" echo --port 7000 --bytes 4KiB
stop_daemon
is "$DSTATUS" 0 "provisioning: nsrelayd exits 0"
done_testing
