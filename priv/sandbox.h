/* SPDX-License-Identifier: MIT */
/* sandbox: the capabilities and the seccomp allow-list of each of
 * nsrelayd's two processes. */
#ifndef NSRELAY_PRIV_SANDBOX_H
#define NSRELAY_PRIV_SANDBOX_H

#include <stdbool.h>

/* The helper, still root: keep CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE,
 * with PROVISIONING CAP_NET_ADMIN too, in every set (the bounding set
 * loses the rest), no new privileges, not dumpable, and its seccomp list.
 * 0 or -errno. */
int sandbox_helper(bool provisioning);

/* The engine, once it runs as its user: no capability in any set (the
 * bounding and ambient sets emptied too), no new privileges, and its
 * seccomp list, for every thread (made before or after).  0 or -errno.
 * NSRELAY_SECCOMP=log in the environment logs a call outside the list
 * (dmesg, the audit log) instead of killing the process: a way to find
 * what a new code path needs, never for production. */
int sandbox_engine(void);

/* The engine's seccomp list alone, installed in the calling process (a
 * test kills a child with it).  0 or -errno. */
int sandbox_engine_filter(bool log_only);
#endif
