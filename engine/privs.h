/* SPDX-License-Identifier: MIT */
/* privs: run as an unprivileged user, with no capability. */
#ifndef NSRELAY_PRIVS_H
#define NSRELAY_PRIVS_H

#include <stdbool.h>

/* Look USER up: its uid must exist and not be 0.  0 or -errno (-ENOENT
 * unknown user, -EPERM root). */
int privs_check_user(const char *user);

/* Started as root: become USER (uid, gid, supplementary groups), which
 * leaves no capability (the bounding and ambient sets are emptied by
 * sandbox_engine(), next).  Started as another user: nothing to do.
 * Fatal on any failure: the engine never serves as root. */
void privs_drop(const char *user);
#endif
