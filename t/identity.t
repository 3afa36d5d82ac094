#!/bin/bash
# SPDX-License-Identifier: MIT
# Identity: the upstream sees the configured user (SO_PEERCRED on a unix
# socket), never root; the daemon's credentials and capabilities after the
# switch.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init

nobody_uid=$(id -u nobody) || skip_all "no user nobody"
nobody_gid=$(id -g nobody)

netns_new NS
mkdir -m 0755 "$T/pc"
start_server cred peercred --unix "$T/pc/cred.sock" --mode 0666

conf_begin "$T/identity.yaml" "$NS"
conf_service cred "unix:$T/pc/cred.sock" 127.0.0.1:7000
daemon_up "$CONF"

line=$(peer_in "$NS" readline --port 7000 --timeout 5 2>&1)
like "$line" '^uid=[0-9]+ ' "the upstream reports the relay's SO_PEERCRED"
uid=$(sed -n 's/^uid=\([0-9]*\) .*/\1/p' <<<"$line")
gid=$(sed -n 's/.* gid=\([0-9]*\) .*/\1/p' <<<"$line")
if [ -n "$uid" ] && [ "$uid" != 0 ]; then
	pass "the upstream does not see root (uid $uid)"
else
	fail "the upstream does not see root" "got: $line"
fi
is "$uid" "$nobody_uid" "the upstream sees user nobody's uid"
is "$gid" "$nobody_gid" "the upstream sees user nobody's gid"

# The daemon's own credentials, every thread.
bad=
caps_allowed=$(( (1 << 21) | (1 << 10) ))	# CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE
for st in /proc/"$DPID"/task/*/status; do
	tid=${st%/status}
	tid=${tid##*/}
	read -r _ ruid euid suid fsuid < <(grep '^Uid:' "$st")
	read -r _ rgid egid sgid fsgid < <(grep '^Gid:' "$st")
	groups=$(sed -n 's/^Groups:[[:space:]]*//p' "$st")
	u="$ruid $euid $suid $fsuid" g="$rgid $egid $sgid $fsgid"
	[ "$u" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] ||
		bad="$bad task $tid: Uid $u;"
	[ "$g" = "$nobody_gid $nobody_gid $nobody_gid $nobody_gid" ] ||
		bad="$bad task $tid: Gid $g;"
	for g in $groups; do
		[ "$g" != 0 ] || bad="$bad task $tid: supplementary group 0;"
	done
done
if [ -z "$bad" ]; then
	pass "every thread runs as nobody:nobody, without group root"
else
	fail "every thread runs as nobody:nobody, without group root" "$bad"
fi
bad=
for st in /proc/"$DPID"/task/*/status; do
	for f in CapPrm CapEff CapInh CapAmb; do
		hex=$(awk -v f="$f:" '$1 == f { print $2 }' "$st")
		[ -n "$hex" ] || continue
		if (( (16#$hex) & ~caps_allowed )); then
			bad="$bad task $(basename "$(dirname "$st")"): $f $hex;"
		fi
	done
done
if [ -z "$bad" ]; then
	pass "capabilities limited to CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE"
else
	fail "capabilities limited to CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE" "$bad"
fi

stop_daemon
is "$DSTATUS" 0 "nsrelayd exits 0 on SIGTERM"
done_testing
