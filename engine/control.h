/* SPDX-License-Identifier: MIT */
/* control: the daemon's unix control socket: status and stats (JSON),
 * reload, and provisioning on request (what the PAM module calls at login).
 * The protocol is described in control.c and nsrelayctl(8). */
#ifndef NSRELAY_CONTROL_H
#define NSRELAY_CONTROL_H

struct config_errors;
struct control;
struct daemon;

/* What `reload` does: re-read the config and apply it (main.c's, given
 * here so that the control socket never calls back into main).  0, or -1
 * with every problem appended to ERRS and the old config still served. */
typedef int (*control_reload_fn)(struct daemon *d,
				 struct config_errors *errs);

/* Listen on PATH (its directory is created 0755; a stale socket is
 * replaced), mode 0600 from the start, then control.mode and
 * control.group of D's config (the group's name is resolved here, with
 * NSS: call before the loop runs).  Call as root.  Returns the socket, or
 * NULL with *err = -errno (-ENOENT also for a group that does not exist,
 * logged). */
struct control *control_open(struct daemon *d, const char *path,
			     control_reload_fn reload, int *err);

/* Close the socket and every client; pending requests complete unseen.
 * NULL is fine. */
void control_close(struct control *ctl);
#endif
