/* SPDX-License-Identifier: MIT */
/* stats: what the daemon serves and how it goes, per namespace and per
 * service, written as JSON (control socket) or in the Prometheus text
 * format (metrics), a piece at a time. */
#ifndef NSRELAY_STATS_H
#define NSRELAY_STATS_H

#include <stddef.h>

struct daemon;
struct evbuffer;
struct stats;
struct stats_walk;

/* The stats of daemon D for one reader (the control socket, the metrics
 * endpoint): its cache of the kernel's veth counters, refreshed at most
 * every STATS_VETH_MAX_AGE_MS.  NULL on ENOMEM. */
#define STATS_VETH_MAX_AGE_MS	500
struct stats *stats_new(struct daemon *d);
void stats_free(struct stats *s);	/* NULL is fine; after its walks */

enum stats_format {
	STATS_STATUS,		/* JSON: the daemon only */
	STATS_JSON,		/* JSON: the daemon and its namespaces */
	STATS_PROM,		/* Prometheus text exposition format 0.0.4 */
};

/* A walk over the namespaces served now (NS: only that one; NULL: all), in
 * format FMT.  READY(ARG) runs once on the loop (never inside this call)
 * when the walk may be stepped: the veth counters are fresh, or could not
 * be read (then they are left out).  NULL with *err: -ENOENT (NS is not
 * served), -ENOMEM. */
struct stats_walk *stats_walk_new(struct stats *s, enum stats_format fmt,
				  const char *ns, void (*ready)(void *arg),
				  void *arg, int *err);

/* Append the next part of the document to OUT: whole namespaces until
 * about BUDGET bytes were added.  Returns 1 when the document is complete
 * (JSON: without a newline), 0 when there is more, -ENOMEM.  Namespaces
 * that went away since the walk began are left out. */
int stats_walk_step(struct stats_walk *w, struct evbuffer *out,
		    size_t budget);

/* Stop a walk (READY will not run).  NULL is fine. */
void stats_walk_free(struct stats_walk *w);
#endif
