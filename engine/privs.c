/* SPDX-License-Identifier: MIT */
/* privs: become the configured user, with no capability.
 *
 * Why: host services authenticate by who connects.  MariaDB's unix_socket
 * plugin maps the peer uid (SO_PEERCRED) of a connection to a database user,
 * and root maps to root@localhost.  A relay that connected as root would
 * hand every namespace's users the database's root account.  Running the
 * engine as an unprivileged user makes every upstream connection carry
 * that user's identity, with no per-connection credential juggling, and
 * the user's file permissions apply to unix upstreams.  What needs
 * privilege (sockets inside namespaces, provisioning) is the helper's
 * (priv/helper.c), forked before this runs; the engine keeps nothing:
 * every capability set, the bounding and ambient sets included, is empty
 * (priv/sandbox.c installs the seccomp list after this).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "engine/log.h"
#include "engine/privs.h"

int privs_check_user(const char *user)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (!pw)
		return errno ? -errno : -ENOENT;
	return pw->pw_uid == 0 ? -EPERM : 0;
}

void privs_drop(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;		/* started as a user: nothing to give up */
	errno = 0;
	pw = getpwnam(user);
	if (!pw)
		fatalx("user \"%s\" does not exist: create it (useradd "
		       "--system --no-create-home %s) or set user: in the "
		       "config", user, user);
	if (pw->pw_uid == 0)
		fatalx("user \"%s\" is root: upstreams would see uid 0", user);
	/* while root may: the bounding set goes first, all of it */
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			fatal("dropping capability %d from the bounding set",
			      cap);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0)
		fatal("initgroups %s", pw->pw_name);
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0)
		fatal("setresgid %u", (unsigned)pw->pw_gid);
	/* without PR_SET_KEEPCAPS the uid change clears the permitted and
	 * effective sets */
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		fatal("setresuid %u", (unsigned)pw->pw_uid);
	if (setuid(0) == 0)
		fatalx("could regain root after dropping privileges");
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer inspects the process with ptrace at exit */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	log_info("running as %s (uid %u)", pw->pw_name, (unsigned)pw->pw_uid);
}
