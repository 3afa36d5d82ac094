#!/bin/bash
# SPDX-License-Identifier: MIT
# SIGTERM while provisioning jobs are in flight and connections are live:
# the daemon stops cleanly (exit 0, under the sanitizers too: no leak, no
# use after free of a job whose callback comes late), every waiting control
# client is answered or closed (none hangs), a live connection is closed,
# and a restarted daemon finishes what was cut short: every user ends
# provisioned as specified.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v socat >/dev/null || skip_all "socat not found"
command -v useradd >/dev/null || skip_all "useradd not found"

N=8
pool_claim I0 UB
U0=$((UB + I0))
pre="hxs-$$-"
users=()
for k in $(seq 0 $((N - 1))); do
	users+=("hxs$$u$k")
	user_add "hxs$$u$k" $((U0 + k))
	netns_adopt "$pre${users[k]}"
	link_adopt "hxs$((I0 + k))"
done

ctl=$T/control.sock
start_server echo echo
conf_begin "$T/stop.yaml" --all "$pre*"
conf_service echo -o idle_timeout=1h "127.0.0.1:$echo_port" 127.0.0.1:7000
conf_text <<EOF
shutdown_grace: 0s
provision:
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "hxs%i"
  control: $ctl
EOF
ask() { echo "$1" | timeout 30 socat -t 30 - "UNIX-CONNECT:$ctl"; }

daemon_up -d "nsrelayd started" "$CONF"
is "$(ask "provision ${users[0]}")" "ok ${users[0]} $pre${users[0]}" \
	"${users[0]} provisioned"
# a live connection in the first namespace, held open
cat >"$T/held.py" <<'PY'
import socket
s = socket.create_connection(("127.0.0.1", 7000), timeout=5)
s.sendall(b"x")
assert s.recv(1) == b"x"
print("connected", flush=True)
s.settimeout(20)
try:
    print("closed" if s.recv(1) == b"" else "data", flush=True)
except OSError as e:
    print("closed", e, flush=True)
PY
start_bg held ip netns exec "$pre${users[0]}" "$PYTHON" "$T/held.py"
connected() { grep -q connected "$held_out"; }
check_within 10 "a connection is live" connected

# the others, all at once, each from its own client; SIGTERM as soon as
# another namespace file exists (jobs are under way)
for k in $(seq 1 $((N - 1))); do
	start_bg "c$k" bash -c "echo 'provision ${users[k]}' |
		timeout 30 socat -t 30 - UNIX-CONNECT:$ctl; echo rc=\$?"
done
started() { ls /run/netns | grep "^$pre" | grep -qv "^$pre${users[0]}\$"; }
wait_for 10 started || diag "no second namespace file seen before SIGTERM"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM with provisioning in flight"
answered() {
	local k
	for k in $(seq 1 $((N - 1))); do
		grep -q "^rc=" "$T/c$k.out" || return 1
	done
}
check_within 10 "every waiting control client was answered or closed" answered
hung=0
for k in $(seq 1 $((N - 1))); do
	grep -q "^rc=124" "$T/c$k.out" && hung=$((hung + 1))
done
is "$hung" 0 "no control client timed out"
check_within 10 "the live connection was closed" grep -q closed "$held_out"
check "no sanitizer report in the daemon's log" \
	bash -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error' '$DLOG'"

# a restart finishes the work: every user provisioned, as specified
start_daemon "$CONF"
ready() { grep -q "started:" "$DLOG"; }
wait_for 20 ready || diag "the restarted daemon did not say it started"
all_ok=0
for k in $(seq 0 $((N - 1))); do
	a=$(ask "provision ${users[k]}")
	if [ "$a" = "ok ${users[k]} $pre${users[k]}" ]; then
		all_ok=$((all_ok + 1))
	else
		diag "provision ${users[k]}: $a"
	fi
done
is "$all_ok" "$N" "after a restart every user is provisioned"
wired=0
for k in $(seq 0 $((N - 1))); do
	i=$((I0 + k))
	ip -n "$pre${users[k]}" -br addr show veth0 2>/dev/null |
		grep -q "100\.$((64 + i / 256))\.$((i % 256))\.2/30" &&
		wired=$((wired + 1))
done
is "$wired" "$N" "... each namespace wired (veth0 with its address)"
last=${users[$((N - 1))]}
wait_listening "$pre$last" 127.0.0.1:7000
check "a namespace cut short earlier now serves" \
	peer_in "$pre$last" echo --port 7000 --bytes 1000 --timeout 5
for k in $(seq 0 $((N - 1))); do
	ask "deprovision ${users[k]}" >/dev/null
done
stop_daemon
is "$DSTATUS" 0 "the restarted daemon exits 0"
done_testing
