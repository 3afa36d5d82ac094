/* SPDX-License-Identifier: MIT */
/* upstream: every service's servers, their health, and which one a new
 * connection goes to.  One set for the daemon: a service's servers are the
 * same whatever namespace a client comes from, so their state and their
 * checks are kept once, not per namespace.  See upstream.c. */
#ifndef NSRELAY_UPSTREAM_H
#define NSRELAY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "config/config.h"	/* the enums of balance and check */

struct config;
struct config_sockaddr;
struct event_base;
struct upstream_set;
struct upstream_srv;

enum upstream_state {
	UPSTREAM_UP,		/* in service */
	UPSTREAM_SUSPECT,	/* failed lately, fewer than fall times in a
				 * row: still in service */
	UPSTREAM_DOWN,		/* out of service until it proves itself */
};

const char *upstream_state_name(enum upstream_state s);

/* An empty set on BASE, or NULL. */
struct upstream_set *upstream_set_new(struct event_base *base);

/* Take the services and servers of CFG (a reload, or the start): a server
 * that stays (same service, same address, or an address of a host name
 * that stays) keeps its state and counters; a new one starts up; one that
 * leaves goes when its last connection ends.  Host names are resolved
 * again from now (dns: of CFG), on the loop.
 * Checks are (re)started, spread over their interval.  The daemon's user
 * name is what the mysql check logs in as.  0, or -ENOMEM with the set as
 * it was. */
int upstream_set_config(struct upstream_set *u, const struct config *cfg);

/* Stop every check and free the set; servers still held by connections
 * are freed when those end (upstream_srv_done()).  NULL is fine. */
void upstream_set_free(struct upstream_set *u);

/* The server a new connection of service SVC goes to, by the service's
 * balance, among the servers in service (up or suspect, or down and due
 * a probe: see upstream.c), other than NOT (NULL: any).  Counts the
 * connection as live on it; the caller gives it back with
 * upstream_srv_done().  NULL when no server will do: every one is down
 * (or SVC is unknown). */
struct upstream_srv *upstream_pick(struct upstream_set *u, const char *svc,
				   const struct upstream_srv *not);

/* What a connection learnt of its server: OK, the server spoke first
 * (its first byte came); not OK (WHY, for the log), the connect failed or
 * timed out, or the server closed or reset before its first byte. */
void upstream_srv_result(struct upstream_srv *s, bool ok, const char *why);

/* A connection of S ended. */
void upstream_srv_done(struct upstream_srv *s);

const struct config_sockaddr *upstream_srv_addr(const struct upstream_srv *s);

/* What stats show of one server. */
struct upstream_info {
	const char *service;
	enum config_balance balance;
	enum config_check_proto check;
	enum config_proxy_protocol proxy;	/* who the server is told */
	enum config_source source;		/* connects from */
	const char *server;		/* its address, canonical */
	const char *name;		/* the "name:port" it was resolved
					 * from; NULL: an address as written */
	enum upstream_state state;
	uint64_t active;		/* live connections */
	uint64_t connections;		/* connections sent to it */
	uint64_t failures;		/* passive and active, every one */
	uint64_t checks, checks_failed;
	bool checked;			/* a check has ended: */
	bool check_ok;			/* its result */
	const char *check_error;	/* why not ok */
	struct timeval check_at;	/* when it ended (wall clock) */
	uint64_t check_us;		/* how long it took */
};

/* Call FN for every server, by service in file order, then the servers of
 * each in file order.  FIRST_OF_SERVICE is true on a service's first. */
void upstream_foreach(const struct upstream_set *u,
		      void (*fn)(void *arg, const struct upstream_info *i,
				 bool first_of_service),
		      void *arg);
#endif
