/* SPDX-License-Identifier: MIT */
/* pam_nsrelay: place a user's session in the network namespace nsrelayd
 * provisions for that user.
 *
 * Session module only.  pam_sm_open_session skips root and users outside
 * [min_uid, max_uid] with success (root logins never depend on the
 * daemon), then asks nsrelayd to provision the user's namespace and moves
 * the process into it (nsrpam.c has the details).  Failure policy:
 * fail=closed (default) denies the session, fail=open logs a warning and
 * lets it go on in the host's namespace.  pam_sm_close_session does
 * nothing: the namespace outlives the session, the user's other processes
 * live in it.  Options come from the PAM configuration only (root's); the
 * environment and the user's files are never read.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_SESSION
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "contrib/pam/nsrpam.h"

#define NSR_EXPORT	__attribute__((visibility("default")))

NSR_EXPORT int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
				   const char **argv);
NSR_EXPORT int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
				    const char **argv);

/* The uid of USER: 0, -ENOENT or -errno. */
static int user_uid(const char *user, uid_t *uid)
{
	struct passwd pw, *res = NULL;
	char *buf;
	long size = sysconf(_SC_GETPW_R_SIZE_MAX);
	int r;

	if (size < 1024)
		size = 16384;
	buf = malloc((size_t)size);
	if (!buf)
		return -ENOMEM;
	r = getpwnam_r(user, &pw, buf, (size_t)size, &res);
	if (!r && res)
		*uid = pw.pw_uid;
	free(buf);
	if (r)
		return -r;
	return res ? 0 : -ENOENT;
}

int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc,
			const char **argv)
{
	struct nsrpam_opts o;
	const void *item = NULL;
	const char *user;
	char why[512], ns[NSRPAM_NAME_MAX + 1];
	uid_t uid = 0;
	int r;

	if (nsrpam_parse_args(&o, argc, argv, why, sizeof(why)) < 0) {
		/* a broken configuration is never "open" */
		pam_syslog(pamh, LOG_ERR, "%s", why);
		return PAM_SERVICE_ERR;
	}
	if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || !item) {
		pam_syslog(pamh, LOG_ERR, "no user name");
		r = -EINVAL;
		snprintf(why, sizeof(why), "no user name");
		goto fail;
	}
	user = item;
	if (!nsrpam_valid_user(user)) {
		/* not logged as is: it may hold control characters */
		snprintf(why, sizeof(why), "user name not accepted");
		r = -EINVAL;
		goto fail;
	}
	r = user_uid(user, &uid);
	if (r < 0) {
		snprintf(why, sizeof(why), "user %s: %s", user,
			 r == -ENOENT ? "unknown" : strerror(-r));
		goto fail;
	}
	if (uid == 0 || uid < o.min_uid || uid > o.max_uid) {
		if (o.debug)
			pam_syslog(pamh, LOG_DEBUG, "user %s (uid %lu): skipped",
				   user, (unsigned long)uid);
		return PAM_SUCCESS;
	}
	r = nsrpam_enter(&o, user, ns, sizeof(ns), why, sizeof(why));
	if (r < 0)
		goto fail;
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "user %s: session in namespace %s",
			   user, ns);
	return PAM_SUCCESS;

fail:
	if (o.fail_open) {
		pam_syslog(pamh, LOG_WARNING,
			   "%s; fail=open: the session stays in the host's "
			   "network namespace", why);
		return PAM_SUCCESS;
	}
	pam_syslog(pamh, LOG_ERR, "%s; session denied", why);
	if (!(flags & PAM_SILENT))
		pam_error(pamh, "Your network namespace is not available "
			  "(%s); try again later.", why);
	return PAM_SESSION_ERR;
}

int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
			 const char **argv)
{
	return PAM_SUCCESS;
}
