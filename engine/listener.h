/* SPDX-License-Identifier: MIT */
/* listener: the namespaces served, and one listening socket per (namespace,
 * service, listen address), each handed to an evconnlistener. */
#ifndef NSRELAY_LISTENER_H
#define NSRELAY_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "engine/daemon.h"
#include "engine/relay.h"
#include "netns/netns.h"

struct config_service;
struct config_sockaddr;

enum binding_state {
	BINDING_WAITING,	/* namespace missing, not yet a namespace */
	BINDING_RETRY,		/* socket/bind/listen failed; backing off */
	BINDING_LISTENING,
};

/* One (namespace, service, listen address).  Shared with relay.c, which
 * reads the names and service settings and counts into it; a connection
 * holds a reference, so a binding outlives its listener and namespace. */
struct binding {
	TAILQ_ENTRY(binding) entry;
	struct daemon *d;
	struct ns *ns;			/* NULL once detached */
	char *ns_name;			/* copy: connections outlive ns */
	const struct config_service *svc;
	const struct config_sockaddr *addr;
	struct evconnlistener *lev;	/* when BINDING_LISTENING */
	struct event *timer;		/* retry, or resume after a burst */
	enum binding_state state;
	int last_err;			/* last failure logged, 0 if none */
	uint64_t backoff_ms;
	bool burst_paused;		/* ACCEPT_BURST reached this turn */
	struct timeval turn;		/* loop turn of the current burst */
	unsigned turn_accepts;
	unsigned refs;			/* 1 for the ns, 1 per connection */

	uint64_t accepted;
	uint64_t active;
	uint64_t closed[RELAY_CLOSE_MAX];
	struct timeval upstream_logged;	/* rate limit of upstream failures */
	uint64_t upstream_failures;
};

TAILQ_HEAD(binding_list, binding);

/* A namespace the daemon serves, known by name and identity. */
struct ns {
	TAILQ_ENTRY(ns) entry;
	char *name;
	struct netns_id id;
	bool have_id;			/* id is that of the live listeners */
	bool wanted;			/* scratch for ns_sync() */
	int last_err;			/* namespace failure logged */
	struct binding_list bindings;
};

/* Make the served namespaces match the config and the namespace directory:
 * add the new ones, drop the vanished ones (closing their listeners; live
 * connections stay), re-create listeners for a namespace re-created under
 * the same name, and retry every listener that is not up, now. */
void ns_sync(struct daemon *d);

/* Count the listeners the current namespaces need. */
unsigned ns_count_bindings(const struct daemon *d);

/* Close every listener and free every namespace (at shutdown). */
void ns_free_all(struct daemon *d);

/* Out of descriptors (ERR is the errno): pause accepting on every listener
 * and resume on a timer; one log line per second at most. */
void listeners_fd_pressure(struct daemon *d, int err);

/* Drop a connection's reference; frees a detached binding at zero. */
void binding_unref(struct binding *b);
#endif
