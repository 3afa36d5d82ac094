#!/bin/bash
# SPDX-License-Identifier: MIT
# The hosts file is written with privileges (CAP_DAC_OVERRIDE), so nothing
# a user controls may steer the write:
#   - a hosts_file in a directory others can write (mode 1777, or owned by
#     nobody) is refused with a clear log line and not written;
#   - in a proper directory (root's, 0755), symbolic links planted at every
#     name the daemon may use as its temporary (".hosts.PID.tmp",
#     "hosts.tmp", the state file's) and at the hosts file itself, pointing
#     to a root-owned victim file, do not make the daemon write the victim;
#   - the file written is a regular file, root's, mode 0644, with the
#     provisioned user in it.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init
command -v socat >/dev/null || skip_all "socat not found"
command -v useradd >/dev/null || skip_all "useradd not found"

# a throwaway user; its index and uid (pool_claim) are this test's alone
pool_claim I0 UB
U0=$((UB + I0))
pre="hxh-$$-"
U="hxh$$"
user_add "$U" "$U0"
netns_adopt "$pre$U"
link_adopt "hxh$I0"
v4() { echo "100.$((64 + $1 / 256)).$(($1 % 256)).$2"; }
line4="$(v4 "$I0" 2) $U.test.example"

start_server echo echo
ctl=$T/control.sock
ask() { echo "$1" | timeout 30 socat -t 30 - "UNIX-CONNECT:$ctl"; }
conf() {	# conf FILE HOSTS_FILE
	conf_begin "$1" --all "$pre*"
	conf_service echo "127.0.0.1:$echo_port" 127.0.0.1:7000
	conf_text <<EOF
provision:
  uid_base: $UB
  namespace: "$pre%u"
  host_interface: "hxh%i"
  control: $ctl
  hosts_file: $2
  domain: test.example
EOF
}

# --- directories others can write: refused, not written
refused() {	# refused DIR DESC
	local dir=$1 desc=$2
	conf "$T/refused.yaml" "$dir/hosts"
	daemon_up -d "nsrelayd started ($desc)" "$CONF"
	is "$(ask "provision $U")" "ok $U $pre$U" "$U provisioned ($desc)"
	logged() { grep -q "writing $dir/hosts: its directory must be root's and writable by root only" "$DLOG"; }
	check_within 5 "$desc: refused with a clear log line" logged
	check "$desc: the hosts file is not written" test ! -e "$dir/hosts"
	check "$desc: nothing at all is written there" \
		bash -c "[ -z \"\$(ls -A '$dir')\" ]"
	is "$(ask "deprovision $U")" "ok $U $pre$U" "deprovision ($desc)"
	stop_daemon
	is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM ($desc)"
}
mkdir -m 1777 "$T/public" || bail "mkdir"
refused "$T/public" "a directory of mode 1777"
mkdir -m 0755 "$T/nobodys" && chown nobody "$T/nobodys" || bail "mkdir"
refused "$T/nobodys" "a directory owned by nobody"
mkdir -m 0775 "$T/group" && chgrp nogroup "$T/group" || bail "mkdir"
refused "$T/group" "a directory writable by its group"

# --- a proper directory with symbolic links planted in it
dir=$T/proper
mkdir -m 0755 "$dir" || bail "mkdir"
victim=$T/victim
printf 'root-owned victim\n' >"$victim"
chmod 0644 "$victim"
victim_sum=$(sha256sum <"$victim")
conf "$T/proper.yaml" "$dir/hosts"
daemon_up -d "nsrelayd started (proper directory)" "$CONF"
# the names the daemon may use for its temporaries, for this process and a
# range of PIDs around it, and the hosts file itself
for n in ".hosts.$DPID.tmp" "hosts.tmp" ".hosts.tmp" "hosts~" "hosts.new" \
	".provisioned.$DPID.tmp" "provisioned.tmp"; do
	ln -s "$victim" "$dir/$n"
	[ "$n" = "${n#.provisioned}" ] || ln -s "$victim" "$T/$n"
done
for p in $(seq $((DPID - 20)) $((DPID + 20))); do
	ln -sf "$victim" "$dir/.hosts.$p.tmp"
done
ln -s "$victim" "$dir/hosts"
is "$(ask "provision $U")" "ok $U $pre$U" "$U provisioned (proper directory)"
written() { [ ! -L "$dir/hosts" ] && grep -qx "$line4" "$dir/hosts"; }
check_within 5 "the hosts file is written, with $U" written
is "$(sha256sum <"$victim")" "$victim_sum" "the victim file is untouched"
is "$(stat -c '%F %U %G %a' "$dir/hosts")" "regular file root root 644" \
	"the hosts file: a regular file, root's, mode 0644"
is "$(stat -c '%F %U %a' "$T/provisioned")" "regular file root 644" \
	"the state file too"
check "no temporary file left behind" \
	bash -c "! find '$dir' '$T' -maxdepth 1 -type f -name '*.tmp' | grep -q ."
check "no log line about a failed write" \
	bash -c "! grep -q 'warning: writing ' '$DLOG'"
is "$(ask "deprovision $U")" "ok $U $pre$U" "deprovision $U"
gone() { ! grep -q "$U" "$dir/hosts"; }
check_within 5 "the hosts file no longer lists $U" gone
is "$(sha256sum <"$victim")" "$victim_sum" "the victim file is still untouched"
stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
