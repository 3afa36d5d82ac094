/* SPDX-License-Identifier: MIT */
/* provisioned: the namespaces this daemon provisioned, remembered across
 * restarts, published in the hosts file, and kept whole. */
#ifndef NSRELAY_PROVISIONED_H
#define NSRELAY_PROVISIONED_H

#include <stdbool.h>

struct config;
struct event_base;
struct prov;
struct prov_spec;
struct provisioned_set;

/* Told when a namespace starts or stops being provisioned. */
typedef void (*provisioned_changed_fn)(void *arg, const char *ns,
				       bool present);

/* The set for CFG's provision: section, provisioning with PROV, its files
 * written by the privileged helper PRIV.  STATE is the file that
 * remembers users across restarts (NULL: none).  NULL on ENOMEM. */
struct privc;
struct provisioned_set *provisioned_new(struct event_base *base,
					const struct config *cfg,
					struct prov *prov, struct privc *priv,
					const char *state,
					provisioned_changed_fn changed,
					void *arg);
void provisioned_free(struct provisioned_set *set);	/* NULL is fine */

/* A reload: CFG from now on (the hosts file's path and domain may not
 * change, nor the namespace directory: the helper writes the file with
 * what it read at start). */
void provisioned_set_config(struct provisioned_set *set,
			    const struct config *cfg);

/* USER's namespace, described by SPEC, is (PRESENT) or is no longer
 * provisioned.  The hosts and state files are rewritten once per burst of
 * changes.  CHANGED runs for the namespace. */
void provisioned_set_user(struct provisioned_set *set, const char *user,
			  const struct prov_spec *spec, bool present);

/* The user and spec of the provisioned namespace NS (its host veth for
 * the stats), or NULL.  Valid until the set changes. */
const struct prov_spec *provisioned_find_ns(const struct provisioned_set *set,
					    const char *ns,
					    const char **user);

/* Is USER provisioned? */
bool provisioned_has(const struct provisioned_set *set, const char *user);

/* The users the state file names (from an earlier run of the daemon):
 * calls FN for each.  0 or -errno (-ENOENT: no file). */
int provisioned_recall(struct provisioned_set *set,
		       void (*fn)(void *arg, const char *user), void *arg);

/* Pause (BUSY) or resume repairs of USER by the link monitor, while a
 * request for USER runs. */
void provisioned_hold(struct provisioned_set *set, const char *user,
		      bool busy);

/* Watch the host's links and keep provisioned namespaces whole.
 * 0 or -errno. */
int provisioned_watch(struct provisioned_set *set);

/* Write pending file changes now (at shutdown). */
void provisioned_flush(struct provisioned_set *set);
#endif
