/* SPDX-License-Identifier: MIT */
/* helper: the privileged half of nsrelayd (see helper.c). */
#ifndef NSRELAY_PRIV_HELPER_H
#define NSRELAY_PRIV_HELPER_H

struct config;

/* The helper process, forked by the engine before it drops its
 * privileges: serve the engine's requests on LOOP_FD (its event loop's
 * channel) and WORK_FD (its worker threads'), with CFG as it was at start
 * (what a reload may not change: namespaces.dir, provisioning's templates,
 * pools and files).  Never returns: exits when the engine closes a channel
 * or dies (0), or on a fatal error (1). */
void priv_helper_main(int loop_fd, int work_fd, const struct config *cfg)
	__attribute__((noreturn));
#endif
