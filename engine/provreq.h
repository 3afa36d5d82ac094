/* SPDX-License-Identifier: MIT */
/* provreq: provision and deprovision requests, one user at a time. */
#ifndef NSRELAY_PROVREQ_H
#define NSRELAY_PROVREQ_H

#include <stdbool.h>

struct config;
struct event_base;
struct prov;
struct provisioned_set;
struct provreq;
struct provreq_waiter;

/* A request ended: ERR 0 (NS is the namespace) or -errno with MSG. */
typedef void (*provreq_done_fn)(void *arg, int err, const char *msg,
				const char *user, const char *ns);

/* Specs come from CFG's provision pool (which a reload cannot change). */
struct provreq *provreq_new(struct event_base *base, const struct config *cfg,
			    struct prov *prov,
			    struct provisioned_set *provd);
/* A reload: look explicit indexes up in CFG from now on. */
void provreq_set_config(struct provreq *pq, const struct config *cfg);

/* Cancel everything (callbacks do not run).  NULL is fine. */
void provreq_free(struct provreq *pq);

/* Provision (or, DEPROVISION, remove) USER's namespace.  Requests for the
 * same user run one after the other, in the order they came; a request
 * identical to the one waiting last in the queue shares its result.  DONE
 * runs exactly once, later, from the loop, unless the waiter is cancelled.
 * Returns the waiter, or NULL on ENOMEM. */
struct provreq_waiter *provreq_submit(struct provreq *pq, const char *user,
				      bool deprovision, provreq_done_fn done,
				      void *arg);

/* The caller is gone: DONE will not run.  The work goes on. */
void provreq_cancel(struct provreq_waiter *w);
#endif
