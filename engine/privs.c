/* SPDX-License-Identifier: MIT */
/* privs: become the configured user, keeping CAP_SYS_ADMIN and
 * CAP_NET_BIND_SERVICE only.
 *
 * Why: host services authenticate by who connects.  MariaDB's unix_socket
 * plugin maps the peer uid (SO_PEERCRED) of a connection to a database user,
 * and root maps to root@localhost.  A relay that connected as root would
 * hand every namespace's users the database's root account.  Running the
 * whole daemon as an unprivileged user makes every upstream connection carry
 * that user's identity, with no per-connection credential juggling; the two
 * capabilities it keeps are the ones socket-in-namespace needs: setns(2)
 * wants CAP_SYS_ADMIN and ports below 1024 want CAP_NET_BIND_SERVICE.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "engine/log.h"
#include "engine/privs.h"

static const int keep[] = {
	CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE,	/* relaying */
	CAP_NET_ADMIN, CAP_DAC_OVERRIDE,	/* provisioning */
	CAP_CHOWN,		/* the hosts and state files are root's */
};
static size_t nkeep = 2;

static bool kept(int cap)
{
	for (size_t i = 0; i < nkeep; i++)
		if (keep[i] == cap)
			return true;
	return false;
}

int privs_check_user(const char *user)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (!pw)
		return errno ? -errno : -ENOENT;
	return pw->pw_uid == 0 ? -EPERM : 0;
}

static void caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};

	if (syscall(SYS_capget, &hdr, data) < 0)
		fatal("capget");
}

static bool has_cap(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

void privs_drop(const char *user, bool provisioning)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	struct passwd *pw;

	if (provisioning)
		nkeep = sizeof(keep) / sizeof(keep[0]);
	if (geteuid() != 0) {
		caps_get(data);
		for (size_t i = 0; i < nkeep; i++)
			if (!has_cap(data, keep[i]))
				log_warnx("running as uid %u without capability "
					  "%d: namespaces may be unreachable "
					  "(see AmbientCapabilities= in "
					  "nsrelay.service)",
					  (unsigned)geteuid(), keep[i]);
		goto nnp;
	}

	errno = 0;
	pw = getpwnam(user);
	if (!pw)
		fatalx("user \"%s\" does not exist: create it (useradd "
		       "--system --no-create-home %s) or set user: in the "
		       "config", user, user);
	if (pw->pw_uid == 0)
		fatalx("user \"%s\" is root: upstreams would see uid 0", user);

	for (int cap = 0; cap <= 63; cap++)
		if (!kept(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			fatal("dropping capability %d from the bounding set",
			      cap);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fatal("PR_SET_KEEPCAPS");
	if (initgroups(pw->pw_name, pw->pw_gid) < 0)
		fatal("initgroups %s", pw->pw_name);
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0)
		fatal("setresgid %u", (unsigned)pw->pw_gid);
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		fatal("setresuid %u", (unsigned)pw->pw_uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fatal("PR_SET_KEEPCAPS");

	memset(data, 0, sizeof(data));
	for (size_t i = 0; i < nkeep; i++) {
		data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
		data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		fatal("capset");
	if (setuid(0) == 0)
		fatalx("could regain root after dropping privileges");
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer inspects the process with ptrace at exit */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	log_info("running as %s (uid %u)", pw->pw_name, (unsigned)pw->pw_uid);
nnp:
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("PR_SET_NO_NEW_PRIVS");
}
