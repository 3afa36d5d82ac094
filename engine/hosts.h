/* SPDX-License-Identifier: MIT */
/* hosts: the namespaces this daemon provisioned, and the hosts-format file
 * that maps "USER.DOMAIN" to their addresses. */
#ifndef NSRELAY_HOSTS_H
#define NSRELAY_HOSTS_H

#include <stdbool.h>

struct daemon;
struct prov_spec;

/* Record (PRESENT) or forget the namespace provisioned for USER, then
 * rewrite the hosts file if one is configured. */
void provisioned_set(struct daemon *d, const char *user,
		     const struct prov_spec *spec, bool present);

/* Call FN(d, name) for the namespace of every provisioned user. */
void provisioned_each_ns(struct daemon *d,
			 void (*fn)(struct daemon *d, const char *name));

void provisioned_free(struct daemon *d);

/* Watch the host's links and keep provisioned namespaces whole (see
 * hosts.c).  0 or -errno. */
int provisioned_watch(struct daemon *d);
void provisioned_unwatch(struct daemon *d);

/* Write "ADDRESS NAME" lines for every provisioned namespace to PATH,
 * atomically (a temporary file renamed over it).  0 or -errno. */
int hosts_write(const struct daemon *d, const char *path, const char *domain);
#endif
