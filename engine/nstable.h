/* SPDX-License-Identifier: MIT */
/* nstable: the namespaces served, indexed by name and by identity, each
 * with its listeners. */
#ifndef NSRELAY_NSTABLE_H
#define NSRELAY_NSTABLE_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct event_base;
struct listener_set;
struct nstable;

/* A table serving CFG's services (CFG must outlive it) through the
 * listeners of LS, whose sockets PRIV (the privileged helper) makes.  NULL
 * on ENOMEM. */
struct privc;
struct nstable *nstable_new(struct event_base *base, const struct config *cfg,
			    struct listener_set *ls, struct privc *priv);

/* Close every listener (connections live on) and free.  NULL is fine. */
void nstable_free(struct nstable *t);

/* Make the table match the config and the namespace directory: add the
 * new namespaces, drop the vanished ones (closing their listeners; live
 * connections stay), re-open listeners of a namespace re-created under the
 * same name, and retry every listener that is not up, now. */
void nstable_sync(struct nstable *t);

/* The same for the N NAMES only (created, deleted or moved in the
 * namespace directory); no other namespace is looked at. */
void nstable_sync_names(struct nstable *t, char *const *names, size_t n);

/* Serve CFG from now on (the old config may be freed once this returns:
 * listeners keep copies of what they need).  Listeners whose (service,
 * listen address) stays keep their very socket and take the new settings;
 * removed ones close, their live connections go on; new ones open;
 * namespaces no longer wanted let go.  Then as nstable_sync(). */
void nstable_reload(struct nstable *t, const struct config *cfg);

/* NAME was provisioned (PRESENT) or deprovisioned: serve it or stop, and
 * touch no other namespace. */
void nstable_provisioned(struct nstable *t, const char *name, bool present);

/* Listeners of NAME: *up listening of *total.  WHY gets "; "-separated
 * reasons for those not up ("" when all are).  0, or -ENOENT when NAME is
 * not served. */
int nstable_listeners(const struct nstable *t, const char *name,
		      unsigned *up, unsigned *total, char *why, size_t len);

/* Close every listener now and open none again (at shutdown; live
 * connections go on). */
void nstable_close_all(struct nstable *t);

struct listener_group;

/* Call FN for every namespace served, in the order they were added:
 * NAME, its listener group (listeners, counts), and ERR, the namespace's
 * own problem (0, or an errno: missing, refused, ...). */
typedef void (*nstable_each_fn)(void *arg, const char *name,
				const struct listener_group *g, int err);
void nstable_foreach(const struct nstable *t, nstable_each_fn fn, void *arg);

/* The same for one namespace: 0, or -ENOENT when NAME is not served. */
int nstable_get(const struct nstable *t, const char *name,
		nstable_each_fn fn, void *arg);

/* Namespaces served. */
size_t nstable_count(const struct nstable *t);

/* Listeners the table wants open, and how many are. */
unsigned nstable_listener_count(const struct nstable *t);
unsigned nstable_listening_count(const struct nstable *t);
#endif
