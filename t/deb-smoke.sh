#!/bin/bash
# SPDX-License-Identifier: MIT
# t/deb-smoke.sh: the Debian package from end to end, as an admin meets it.
# Builds it from this tree (dpkg-buildpackage -us -uc -b on a copy, never
# in the tree), runs lintian on the .deb and the .changes (no error, no
# warning), installs it with apt-get, then uses only the installed paths:
# the files where Debian puts them, the user and /run/nsrelay the
# maintainer scripts made, the unit enabled, nsrelayd --check of the
# shipped config, a daemon started on the shipped config, a daemon
# relaying a greeting into a namespace of this test's, nsrelayctl and its
# bash completion naming that namespace, man nsrelayd.  Then apt-get purge,
# and the machine is as it was: no /etc/nsrelay, /run/nsrelay, unit or
# user of the package, and the namespace still there (a purge never
# touches users' namespaces).
#
# Root, on Debian 12 with .ci/deps installed (dpkg-dev, debhelper,
# lintian).  Not part of make check: it installs a package on the host.
# If nsrelay is already installed here, it does nothing (skip): it would
# purge it.
#   bash t/deb-smoke.sh                  build in a temporary directory
#   DEB_OUT=DIR bash t/deb-smoke.sh      build in DIR, and keep it
# TAP on stdout; exit status 0 when every point passed.
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
. "$top_srcdir/t/lib.sh"

# tap_init wants a daemon to exist; ours is installed further down
NSRELAYD=/bin/true
tap_init
for c in dpkg-buildpackage dh lintian apt-get git; do
	command -v "$c" >/dev/null || skip_all "$c not found (bash .ci/deps)"
done
st=$(dpkg-query -W -f='${db:Status-Status}' nsrelay 2>/dev/null)
case $st in
'' | not-installed) ;;
*) skip_all "nsrelay is $st on this host: this test would purge it" ;;
esac

# /run/nsrelay is the package's, and its purge removes it: a daemon built
# from source and running with the default control.path uses it too
if ss -Hxl 2>/dev/null | grep -q ' /run/nsrelay/'; then
	skip_all "a daemon listens in /run/nsrelay here: the purge would remove its socket"
fi
stale=
if [ -e /run/nsrelay ]; then
	stale=1
	diag "/run/nsrelay exists, nothing listens in it: the purge will remove it"
fi

# what the package adds and its purge must take away again (a stale
# /run/nsrelay aside)
state() {
	local f
	getent passwd nsrelay | cut -d: -f1,5-7
	getent group nsrelay | cut -d: -f1,4
	for f in /etc/nsrelay /run/nsrelay /lib/systemd/system/nsrelay.service \
		/etc/systemd/system/multi-user.target.wants/nsrelay.service \
		/usr/lib/sysusers.d/nsrelay.conf /usr/lib/tmpfiles.d/nsrelay.conf \
		/var/lib/systemd/deb-systemd-helper-enabled/nsrelay.service.dsh-also; do
		[ "$f" = /run/nsrelay ] && [ -n "$stale" ] && continue
		[ -e "$f" ] || [ -L "$f" ] && echo "$f"
	done
	return 0
}
before=$(state)

installed=
test_cleanup() {	# lib.sh's EXIT trap: never leave the package behind
	[ -n "$installed" ] || return 0
	echo "# purging nsrelay (the test stopped before its own purge)"
	apt-get purge -y -qq -o DPkg::Lock::Timeout=120 nsrelay >/dev/null 2>&1
}

# --- build, from a copy of the tree: dpkg-buildpackage writes its products
# in the copy's parent, which is ours alone
version=$(sed -n 's/^AC_INIT(\[nsrelay\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
is "$(cd "$top_srcdir" && dpkg-parsechangelog -S Version)" "$version" \
	"debian/changelog's version is configure.ac's ($version)"
B=${DEB_OUT:-$T/deb}
rm -rf "$B" && mkdir -p "$B/nsrelay-$version" || bail "cannot make $B"
# the files git knows and the new ones it does not ignore, as they are
# in the tree now (a developer's changes included)
(cd "$top_srcdir" && git ls-files -z -co --exclude-standard |
	xargs -0 cp -a --parents -t "$B/nsrelay-$version") ||
	bail "cannot copy the tree"
arch=$(dpkg --print-architecture)
deb=$B/nsrelay_${version}_$arch.deb
changes=$B/nsrelay_${version}_$arch.changes
t0=$(date +%s)
(cd "$B/nsrelay-$version" &&
	DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) >"$B/build.log" 2>&1
st=$?
ok "$st" "dpkg-buildpackage -us -uc -b builds $(basename "$deb") ($(($(date +%s) - t0)) s)" ||
	{ diag "$(tail -40 "$B/build.log")"; bail "no package to test"; }
[ -f "$deb" ] || bail "no $deb"
diag "$(dpkg-deb -c "$deb" | awk '{print $1, $6}')"

# --- lintian: tags at levels error and warning fail; the informational
# ones are shown
lint=$(lintian -I --tag-display-limit 0 "$deb" "$changes" 2>&1 |
	grep -v '^running with root privileges is not recommended!$')
ew=$(grep -E '^[EW]: ' <<<"$lint")
is "$ew" "" "lintian: no error, no warning on the .deb and the .changes"
diag "lintian:" "${lint:-(nothing)}"

# --- install
out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	-o DPkg::Lock::Timeout=120 "$deb" 2>&1)
st=$?
installed=1
ok "$st" "apt-get install -y ./$(basename "$deb")" || diag "$out"
# the maintainer scripts must not fail without systemd as PID 1
is "$(dpkg-query -W -f='${db:Status-Status}' nsrelay)" installed \
	"dpkg: nsrelay installed (maintainer scripts succeeded)"
NSRELAYD=/usr/sbin/nsrelayd
CTL=/usr/bin/nsrelayctl

check "nsrelayd in /usr/sbin" test -x /usr/sbin/nsrelayd
check "nsrelayctl in /usr/bin" test -x /usr/bin/nsrelayctl
# libpam's own directory: where libpam-modules keeps pam_unix.so
pamdir=$(dpkg -L libpam-modules | sed -n 's|/pam_unix\.so$||p' | head -n1)
check "pam_nsrelay.so in libpam's directory ($pamdir)" \
	test -f "$pamdir/pam_nsrelay.so"
check "the unit in /lib/systemd/system" test -f /lib/systemd/system/nsrelay.service
is "$(dpkg-query -W -f='${Conffiles}' nsrelay | awk 'NF {print $1}')" \
	/etc/nsrelay/nsrelay.yaml "/etc/nsrelay/nsrelay.yaml is the one conffile"
for f in README.md nsrelay.yaml examples/nftables-nsrelay.conf \
	examples/nsrelay-session.pam; do
	check "/usr/share/doc/nsrelay/$f" test -f "/usr/share/doc/nsrelay/$f"
done
check "bash completion for nsrelayctl" \
	test -f /usr/share/bash-completion/completions/nsrelayctl

# --- what the maintainer scripts made
IFS=: read -r _ _ uid _ _ home shell <<<"$(getent passwd nsrelay)"
like "$uid" '^[0-9]+$' "user nsrelay exists"
if [ -n "$uid" ]; then
	cmp_ok "$uid" -lt 1000 "nsrelay is a system user (uid $uid)"
fi
is "$shell" /usr/sbin/nologin "nsrelay has no shell"
is "$home" /nonexistent "nsrelay has no home"
check "and that home does not exist" test ! -e /nonexistent
is "$(stat -c '%U:%G %a' /run/nsrelay 2>&1)" "root:root 755" \
	"/run/nsrelay made from tmpfiles.d (root's, 0755)"
is "$(readlink /etc/systemd/system/multi-user.target.wants/nsrelay.service)" \
	/lib/systemd/system/nsrelay.service "the unit is enabled (multi-user.target)"

# --- the shipped config: valid, and a daemon starts on it (its control
# socket moved here, so as not to take the host's)
out=$(/usr/sbin/nsrelayd --check -c /etc/nsrelay/nsrelay.yaml 2>&1)
st=$?
ok "$st" "nsrelayd --check accepts the shipped /etc/nsrelay/nsrelay.yaml"
diag "$out"
warnings=$(grep -ci warning <<<"$out")
is "$warnings" 0 "with no warning (its user: nsrelay exists)"
sed "s|^  path: /run/nsrelay/control.sock$|  path: $T/shipped.sock|" \
	/etc/nsrelay/nsrelay.yaml >"$T/shipped.yaml"
chmod 0644 "$T/shipped.yaml"
start_daemon "$T/shipped.yaml"
check_within 10 "a daemon on the shipped config answers nsrelayctl status" \
	"$CTL" -s "$T/shipped.sock" status
out=$("$CTL" -s "$T/shipped.sock" status --json 2>&1)
like "$out" '"listening":0[,}]' "and relays nothing (no listener open anywhere)"
stop_daemon
is "$DSTATUS" 0 "it stops on SIGTERM with status 0"

# --- a demo: a namespace of this test's, a greeting upstream on the host's
# 127.0.0.1, the installed daemon running as nsrelay relaying it
netns_new NS
start_server up greet --text "220 nsrelay package smoke test"
conf_begin "$T/demo.yaml" --user nsrelay --control "$T/demo.sock" "$NS"
conf_service greet "127.0.0.1:$up_port" 127.0.0.1:7025
daemon_up -d "the installed nsrelayd listens in namespace $NS" "$T/demo.yaml"
check "a client in $NS gets the host's greeting through it" \
	peer_in "$NS" greet --port 7025 --expect "220 nsrelay package smoke test" --timeout 5
is "$(ps -o user= -p "$DPID" | tr -d ' ')" nsrelay "the daemon runs as user nsrelay"
out=$("$CTL" -s "$T/demo.sock" stats --json 2>&1)
like "$out" "\"name\":\"$NS\"" "nsrelayctl stats --json names $NS"
# completion, as bash-completion would load it: commands, then names
complete_words() {	# complete_words WORD...: what <Tab> offers after them
	bash -c '. /usr/share/bash-completion/completions/nsrelayctl
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_nsrelayctl; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
		_ "$@"
}
is "$(complete_words nsrelayctl st)" "stats status " \
	"completion: nsrelayctl st<Tab> offers stats, status"
is "$(complete_words nsrelayctl -s "$T/demo.sock" stats '')" "$NS " \
	"completion: nsrelayctl stats <Tab> offers the daemon's namespace"
stop_daemon
is "$DSTATUS" 0 "the demo daemon stops with status 0"

# --- manuals
out=$(MANPAGER=cat MANWIDTH=80 man nsrelayd 2>&1)
st=$?
ok "$st" "man nsrelayd renders"
like "$out" 'SYNOPSIS' "and shows its synopsis"
for p in nsrelayctl.8 nsrelay.yaml.5 pam_nsrelay.8; do
	check "man ${p%.*}(${p##*.}) is installed" man -w "${p##*.}" "${p%.*}"
done

# --- purge: the package's own files go, users' namespaces stay
files=$(dpkg -L nsrelay | while read -r f; do [ -f "$f" ] && echo "$f"; done)
out=$(DEBIAN_FRONTEND=noninteractive apt-get purge -y -q \
	-o DPkg::Lock::Timeout=120 nsrelay 2>&1)
st=$?
ok "$st" "apt-get purge -y nsrelay" || diag "$out"
installed=
like "$(dpkg-query -W -f='${db:Status-Status}' nsrelay 2>&1)" \
	'(not-installed|no packages found)' "dpkg: nsrelay is gone, config included"
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done)
is "$left" "" "no file of the package is left"
is "$(state)" "$before" \
	"as before: /etc/nsrelay, /run/nsrelay, the unit and its link, the user"
check "namespace $NS is still there" test -e "/run/netns/$NS"
check "and still a namespace" ip netns exec "$NS" true

diag "package files in $B (kept: DEB_OUT)"
[ -n "${DEB_OUT-}" ] || diag "(removed with the test's directory)"
done_testing
