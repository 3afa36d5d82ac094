/* SPDX-License-Identifier: MIT */
/* daemon: the objects one nsrelayd process is made of, wired by main.c.
 * Each is owned by its module; this is only where they are found. */
#ifndef NSRELAY_DAEMON_H
#define NSRELAY_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

struct config;
struct event;
struct control;
struct event_base;
struct listener_set;
struct metrics;
struct nstable;
struct privc;
struct prov;
struct provisioned_set;
struct provreq;
struct upstream_set;

struct daemon {
	struct event_base *base;
	struct config *cfg;
	char *cfg_path;			/* absolute, for reloads */
	long fd_limit;			/* RLIMIT_NOFILE, soft = hard */
	struct privc *priv;		/* the privileged helper */
	struct listener_set *ls;	/* listeners and connections */
	struct nstable *nst;		/* namespaces served */
	struct upstream_set *ups;	/* the services' servers, health */
	/* provisioning; all NULL when the config has no provision: */
	struct prov *prov;
	struct provisioned_set *provd;
	struct provreq *pq;
	struct control *ctl;		/* always (NULL once stopping) */
	struct metrics *metrics;	/* NULL: no metrics: section */
	struct timeval started;		/* wall clock */
	/* config generations: 1 at start, one more per good reload */
	uint64_t generation;
	bool reload_ok;			/* last reload's result */
	struct timeval reloaded;	/* and when (0: never) */
	/* stopping: draining connections until stop_by */
	uint64_t grace_ms;
	bool stopping;
	struct timeval stop_by;
	struct event *drain;
};
#endif
