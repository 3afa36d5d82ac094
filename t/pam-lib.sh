# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# t/pam-lib.sh: what the PAM tests (t/pam.t, t/pam-ssh.t) share, sourced
# after t/lib.sh and tap_init.
#
#   PAM_MODULE            the built module (absolute path)
#   PAM_ENV               command prefix for a program that dlopen()s the
#                         module: in a sanitizer build, LD_PRELOAD of the
#                         ASan runtime (the module links it; pamtester and
#                         sshd do not)
#   pam_user_add NAME UID [HOME SHELL]   a throwaway user, removed at exit
#   pam_service NAME      /etc/pam.d/NAME from stdin, removed at exit
#   pam_cleanup           call from the test's test_cleanup
#   ns_inode NAME         inode of /run/netns/NAME; net_inode: this shell's

: "${PAM_MODULE:=$top_builddir/contrib/pam/pam_nsrelay.so}"
[ -f "$PAM_MODULE" ] || bail "module not built: $PAM_MODULE"
PAM_ENV=(env)
_pam_asan=$(ldd "$PAM_MODULE" 2>/dev/null | awk '/libasan/ { print $3 }')
if [ -n "$_pam_asan" ]; then
	# the module's own leaks are the unit test's business
	# (t/unit/pam_test); the host programs' are not ours
	PAM_ENV=(env "LD_PRELOAD=$_pam_asan" ASAN_OPTIONS=detect_leaks=0)
fi
_pam_users=()
_pam_files=()

pam_user_add() {	# pam_user_add NAME UID [HOME SHELL]
	local name=$1 uid=$2 home=${3:-/nonexistent} shell=${4:-/usr/sbin/nologin}
	getent passwd "$name" >/dev/null && bail "user $name exists"
	getent passwd "$uid" >/dev/null && bail "uid $uid is taken"
	_pam_users+=("$name")
	# /etc/passwd is locked while another useradd runs: retry
	wait_for 20 useradd -M -N -u "$uid" -d "$home" -s "$shell" "$name" ||
		bail "useradd $name failed"
	usermod -p '*' "$name" || bail "usermod $name failed"
}

pam_service() {	# pam_service NAME < CONTENT
	local f=/etc/pam.d/$1
	[ -e "$f" ] && bail "$f exists"
	_pam_files+=("$f")
	cat >"$f" || bail "cannot write $f"
}

pam_cleanup() {
	local u f
	for f in "${_pam_files[@]}"; do rm -f "$f"; done
	for u in "${_pam_users[@]}"; do
		getent passwd "$u" >/dev/null || continue
		wait_for 20 userdel -f "$u" 2>/dev/null ||
			echo "# userdel $u failed"
	done
}

ns_inode() { stat -L -c %i "/run/netns/$1"; }
net_inode() { local l; l=$(readlink /proc/self/ns/net); l=${l#net:[}; echo "${l%]}"; }
