/* SPDX-License-Identifier: MIT */
/* control: the root-only unix socket that provisions namespaces on request
 * (what the PAM module calls at login). */
#ifndef NSRELAY_CONTROL_H
#define NSRELAY_CONTROL_H

struct control;
struct daemon;

/* Listen on PATH (its directory is created 0755; a stale socket is
 * replaced), mode 0600 from the start, so that only root may connect.
 * Call as root.  Returns the socket, or NULL with *err = -errno. */
struct control *control_open(struct daemon *d, const char *path, int *err);

/* Close the socket and every client; pending requests complete unseen.
 * NULL is fine. */
void control_close(struct control *ctl);
#endif
