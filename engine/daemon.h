/* SPDX-License-Identifier: MIT */
/* daemon: the state the engine's modules share: one event loop, the config
 * it serves, the namespaces and their listeners, the live connections. */
#ifndef NSRELAY_DAEMON_H
#define NSRELAY_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "netns/netns.h"

#include "netns/provision.h"

struct config;
struct ns;
struct binding;
struct relay;
struct client;
struct provisioned;

TAILQ_HEAD(ns_list, ns);
TAILQ_HEAD(relay_list, relay);
TAILQ_HEAD(client_list, client);
TAILQ_HEAD(provisioned_list, provisioned);

struct daemon {
	struct event_base *base;
	struct config *cfg;
	struct ns_list nss;		/* namespaces served */
	struct relay_list relays;	/* live connections */
	uint64_t nrelays;
	uint64_t next_id;		/* connection ids, for logs */

	/* descriptor pressure: all listeners paused, one timer resumes */
	bool fd_paused;
	struct event *fd_timer;
	uint64_t fd_failures;		/* since the last report */
	struct timeval fd_reported;
	uint64_t fd_pause_ms;		/* how long the next pause lasts */

	/* discovery: inotify on the namespace directory; changes are
	 * coalesced into one ns_sync() per loop turn */
	int watch_fd;
	struct event *watch_ev;
	struct event *sync_ev;

	/* provisioning (NULL prov: not configured) and its control socket */
	struct prov *prov;
	struct prov_pool pool;
	struct provisioned_list provisioned;
	int monitor_fd;			/* host link events */
	struct event *monitor_ev;
	struct evconnlistener *control;
	struct client_list clients;
	unsigned nclients;

	long fd_limit;			/* RLIMIT_NOFILE, soft = hard */
	unsigned nlisteners;		/* listeners bound now */
};
#endif
