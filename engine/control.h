/* SPDX-License-Identifier: MIT */
/* control: the root-only unix socket that provisions namespaces on request
 * (what a PAM module calls at login). */
#ifndef NSRELAY_CONTROL_H
#define NSRELAY_CONTROL_H

#include <stddef.h>

struct daemon;
struct prov_spec;

/* Listen on PATH (its directory is created 0755; a stale socket is
 * replaced), mode 0600 so that only root may connect.  Call as root.
 * 0 or -errno. */
int control_open(struct daemon *d, const char *path);

/* Close the socket and every client; pending requests complete unseen. */
void control_close(struct daemon *d);

/* The spec of USER's namespace from the config's pool (INDEX < 0: from the
 * uid).  0, or -1 with the reason in WHY. */
int control_spec(struct daemon *d, const char *user, long index,
		 struct prov_spec *spec, char *why, size_t len);
#endif
