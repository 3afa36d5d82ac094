#!/bin/bash
# SPDX-License-Identifier: MIT
# make install DESTDIR=... from the build tree, then what a new admin
# relies on: the programs, manuals, unit, PAM module, README and example
# config where ./configure said; the unit's ExecStart, its -c path, the
# daemon's own default -c and Documentation= all pointing at what was
# installed; the unit passes systemd-analyze verify and keeps the options
# nsrelayd needs (Type=notify, the bounding set, no mount namespace);
# make uninstall removes it all again.  Needs no root.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
tap_init --no-netns

[ -f "$top_builddir/Makefile" ] || skip_all "no Makefile in $top_builddir"
command -v make >/dev/null || skip_all "make not found"
# a make of our own, not a part of the make running the tests
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
D=$T/root

# mk VAR: the value of a make variable of the build tree, fully expanded
printf 'print-%%:\n\t@printf "%%s\\n" "$($*)"\n' >"$T/print.mk"
mk() {
	make -s --no-print-directory -C "$top_builddir" -f Makefile \
		-f "$T/print.mk" "print-$1"
}

check "make install DESTDIR=... succeeds" \
	make -s --no-print-directory -C "$top_builddir" install DESTDIR="$D"

sbindir=$(mk sbindir) bindir=$(mk bindir) sysconfdir=$(mk sysconfdir)
docdir=$(mk docdir) mandir=$(mk mandir) pamdir=$(mk pamdir)
unitdir=$(mk systemdsystemunitdir)
diag "sbindir=$sbindir sysconfdir=$sysconfdir docdir=$docdir mandir=$mandir unitdir=$unitdir pamdir=$pamdir"

check "nsrelayd in sbindir" test -x "$D$sbindir/nsrelayd"
# nsrelayctl in bindir: control.group's members run it, not only root
check "nsrelayctl in bindir" test -x "$D$bindir/nsrelayctl"
check "and not in sbindir" test ! -e "$D$sbindir/nsrelayctl"
# any other program, wherever the build lists it
for p in $(mk sbin_PROGRAMS); do
	[ "$p" = nsrelayd ] ||
		check "$p installed in sbindir" test -x "$D$sbindir/$p"
done
for p in $(mk bin_PROGRAMS); do
	[ "$p" = nsrelayctl ] ||
		check "$p installed in bindir" test -x "$D$bindir/$p"
done

mans=$(mk dist_man_MANS; mk man_MANS; mk dist_man5_MANS; mk dist_man8_MANS)
like "$mans" 'man/nsrelayd\.8' "nsrelayd(8) is listed for installation"
for m in $mans; do
	b=${m##*/}
	f=$D$mandir/man${b##*.}/$b
	if [ -f "$f" ]; then
		out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$f" 2>&1)
		is "$out" "" "$b installed in man${b##*.}, renders without warnings"
	else
		fail "$b installed in man${b##*.}" "missing: $f"
	fi
done
unit=$D$unitdir/nsrelay.service
check "nsrelay.service installed in the unit directory" test -f "$unit"
check "pam_nsrelay.so installed in pamdir" test -f "$D$pamdir/pam_nsrelay.so"
check "README.md installed in docdir" test -f "$D$docdir/README.md"
check "example nsrelay.yaml installed in docdir" test -f "$D$docdir/nsrelay.yaml"

# unit_value KEY: the value of KEY= in the installed unit (the last one)
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n1; }
conf=$sysconfdir/nsrelay/nsrelay.yaml
is "$(unit_value ExecStart)" "$sbindir/nsrelayd -f -c $conf" \
	"ExecStart: the installed nsrelayd, config under sysconfdir"
is "$(unit_value ExecStartPre)" "$sbindir/nsrelayd --check -c $conf" \
	"ExecStartPre checks that same config"
default=$("$D$sbindir/nsrelayd" --help | sed -n 's/.*(default \(.*\))$/\1/p')
is "$default" "$conf" "the daemon's default -c is the unit's config"
doc=$(unit_value Documentation)
like "$doc" '(^| )man:nsrelayd\(8\)( |$)' "Documentation= names man:nsrelayd(8)"
check "and that page is installed" test -f "$D$mandir/man8/nsrelayd.8"
like "$doc" "(^| )file://$docdir/README\\.md( |\$)" \
	"Documentation= names the README in docdir"
check "and the README is there" test -f "$D$docdir/README.md"
# (its namespaces.dir moved to an empty one: the host's namespaces are not
# the file's business)
mkdir -p "$T/netns"
sed "s|^\(  dir:\) /run/netns|\1 $T/netns|" "$D$docdir/nsrelay.yaml" >"$T/example.yaml"
out=$("$D$sbindir/nsrelayd" --check -c "$T/example.yaml" 2>&1)
ok $? "the installed example config passes nsrelayd --check"
diag "$out"

# What the daemon needs of the unit
is "$(unit_value Type)" notify "Type=notify"
is "$(unit_value NotifyAccess)" main "NotifyAccess=main"
like "$(unit_value WatchdogSec)" '^[0-9]+s?$' "WatchdogSec= set"
is "$(unit_value ExecReload)" '/bin/kill -HUP $MAINPID' "ExecReload sends SIGHUP"
cmp_ok "$(unit_value LimitNOFILE)" -ge 65536 "LimitNOFILE sized for thousands of namespaces"
is "$(unit_value CapabilityBoundingSet | tr ' ' '\n' | sort | tr '\n' ' ')" \
	"CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_SETGID CAP_SETPCAP CAP_SETUID CAP_SYS_ADMIN " \
	"CapabilityBoundingSet: exactly the six the two processes use"
is "$(unit_value RestrictNamespaces)" net "RestrictNamespaces=net (setns stays allowed)"
mountns=$(grep -E '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectProc|ProcSubset|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|MountFlags|PrivateMounts|PrivateUsers|PrivateNetwork|RootDirectory|RootImage)=' "$unit")
is "$mountns" "" "no option that gives the unit its own mount (or user, network) namespace"

# systemd-analyze verify on a copy whose paths point into DESTDIR
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$T/verify"
	sed -e "s|$sbindir/|$D$sbindir/|g" -e "s|$sysconfdir/|$D$sysconfdir/|g" \
		"$unit" >"$T/verify/nsrelay.service"
	out=$(cd "$T/verify" && MANPATH=$D$mandir \
		systemd-analyze verify ./nsrelay.service 2>&1)
	st=$?
	ok "$([ "$st" = 0 ] && [ -z "$out" ]; echo $?)" \
		"systemd-analyze verify: no error, no warning (man page found)"
	[ -z "$out" ] || diag "$out"
else
	# no systemd-analyze: every line a comment, a section or Key=Value
	out=$(grep -vE '^(#.*|\[(Unit|Service|Install)\]|[A-Z][A-Za-z]+=.*|)$' "$unit")
	is "$out" "" "unit syntax (systemd-analyze not found)"
fi

check "make uninstall DESTDIR=... succeeds" \
	make -s --no-print-directory -C "$top_builddir" uninstall DESTDIR="$D"
left=$(find "$D" -type f 2>/dev/null)
is "$left" "" "make uninstall leaves no file behind"
done_testing
