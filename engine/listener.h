/* SPDX-License-Identifier: MIT */
/* listener: one listening socket per (namespace, service, listen address),
 * handed to an evconnlistener, and the limits that keep one namespace from
 * starving the others. */
#ifndef NSRELAY_LISTENER_H
#define NSRELAY_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/event_struct.h>
#include <event2/listener.h>

#include "engine/relay.h"

#include "config/config.h"

struct event_base;
struct listener_set;

enum listener_state {
	LISTENER_CLOSED,	/* not open: namespace missing, or not tried */
	LISTENER_FAILED,	/* socket/bind/listen failed; retried */
	LISTENER_LISTENING,
};

/* Why the listeners of a namespace were held back: the stats count each
 * time one began.  Append only: the names are shown to admins and scripts
 * depend on them (listener_hold_name()). */
enum listener_hold {
	LISTENER_HOLD_FAIR_SHARE,	/* above its fair share of descriptors
					 * while they run short */
	LISTENER_HOLD_CONNECTIONS,	/* limits.connections_per_namespace */
	LISTENER_HOLD_RATE,		/* limits.connections_per_second */
	LISTENER_HOLD_SERVICE,		/* a service's connections_per_namespace */
	LISTENER_HOLD_MAX
};

const char *listener_hold_name(enum listener_hold h);

/* How long a namespace's clients waited to be accepted: a histogram with
 * upper bounds LISTENER_WAIT_LE_US (the last bucket has none). */
#define LISTENER_WAIT_BUCKETS	6
extern const uint64_t listener_wait_le_us[LISTENER_WAIT_BUCKETS - 1];

struct listener_waits {
	uint64_t bucket[LISTENER_WAIT_BUCKETS];	/* not cumulative */
	uint64_t count;
	uint64_t sum_us;
};

/* Limits per namespace (0: none). */
struct listener_limits {
	unsigned conns;		/* concurrent connections */
	unsigned rate;		/* new connections per second ... */
	unsigned burst;		/* ... with bursts of this many */
};

/* The counts of one service in one namespace, shared by its listeners
 * there and so by every connection they started: a reload that replaces
 * a listener (another address) or removes it while its connections live
 * on never takes anything away from them.  Owned by the group; freed when
 * no listener of the service is left in it, live connections included. */
struct listener_tally {
	TAILQ_ENTRY(listener_tally) entry;	/* in its group */
	char *name;			/* the service's */
	struct relay_counters cnt;
	/* the last connection that did not end well (close reason other
	 * than done) and when, for the stats; last_fail_at 0: none yet */
	enum relay_close last_fail;
	struct timeval last_fail_at;
	bool held;			/* at the service's own limit */
	unsigned refs;			/* one per listener */
};

/* The listeners of one namespace share its limits and counts.  Owned by
 * the namespace table; kept alive by its listeners (refs). */
struct listener_group {
	TAILQ_HEAD(, listener) members;
	/* listeners a reload (or the namespace going) took away while
	 * connections of theirs live on: not accepting, still counted */
	TAILQ_HEAD(, listener) retired;
	TAILQ_HEAD(, listener_tally) tallies;	/* in order of arrival */
	TAILQ_ENTRY(listener_group) fair_entry;	/* in the set, if fair_held */
	struct listener_set *set;
	char *name;
	unsigned n_members;
	struct listener_limits lim;
	uint64_t active;		/* live connections of the namespace
					 * and its datagram flows */
	uint64_t fds;			/* the descriptors they hold: two a
					 * connection, one a flow */
	double tokens;			/* rate limit bucket */
	struct timeval refill;		/* when tokens were last added */
	bool held;			/* paused at a limit it was given */
	bool fair_held;			/* paused above its fair share */
	struct event *resume;		/* rate limit: resume later */
	/* for the stats: holds that began, by reason, and the waits */
	uint64_t holds[LISTENER_HOLD_MAX];
	struct listener_waits waits;
	/* per reason: holds since its last log line, and when that was */
	uint64_t held_count[LISTENER_HOLD_MAX];
	struct timeval logged[LISTENER_HOLD_MAX];
	unsigned refs;
};

/* One (namespace, service, listen address).  The relay origin is first:
 * every connection refers to it, and keeps the listener (not the socket)
 * alive until it ends. */
struct listener_svc;
struct listener_addr;
struct dgram_port;
struct dgram_set;

struct listener {
	struct relay_origin origin;
	TAILQ_ENTRY(listener) entry;	/* in its group: members or retired */
	TAILQ_ENTRY(listener) all;	/* in the set */
	struct listener_set *set;
	struct listener_group *grp;
	struct listener_tally *tally;	/* origin.cnt is &tally->cnt */
	/* copies of the settings, shared by every listener of the set with
	 * the same ones (refcounted): a reload may free the config, and live
	 * connections (origin.svc points into svc) still read them */
	struct listener_svc *svc;
	struct listener_addr *addr_ref;
	const struct config_sockaddr *addr;	/* = &addr_ref->a */
	int fd;				/* listening socket, -1 if none */
	struct dgram_port *dport;	/* protocol: udp: the socket's flows
					 * (it owns fd) */
	int listen_pending;		/* nstable.c's scratch: a socket made
					 * for it, not handed over yet */
	bool enabled;			/* ev added: accepting */
	bool dgram;			/* protocol: udp (as made: a reload
					 * that changes it makes another) */
	bool retired;			/* in grp->retired */
	struct event ev;		/* readable: accept (no evconnlistener:
					 * one allocation less per listener) */
	struct event *err_timer;	/* resume after an error: made when
					 * first needed, most never are */
	enum listener_state state;
	int err;			/* last failure, 0 if none */
	const char *err_what;		/* step that failed */
	struct timeval err_at;		/* when (wall clock) */
	bool err_paused;		/* after an accept error, for a second */
	bool behind;			/* clients may have waited in its
					 * backlog: ask the kernel how long */
	bool mark;			/* scratch for a reload */
	unsigned refs;			/* 1 while in a group, 1 per conn */
};

/* All listeners of the loop, the relay they feed, and the descriptor
 * budget: FD_LIMIT descriptors, of which RESERVE are kept for everything
 * but relayed connections (control socket, provisioning, namespace files,
 * one more connection per namespace). */
struct listener_set *listener_set_new(struct event_base *base,
				      long fd_limit, unsigned reserve);
void listener_set_free(struct listener_set *set);	/* NULL is fine */
struct relay_set *listener_set_relays(struct listener_set *set);
struct dgram_set *listener_set_dgrams(struct listener_set *set);

/* Who a namespace belongs to, for the PROXY header (proxy_protocol:) and
 * source: namespace: the spec of namespace NS if nsrelayd provisioned it
 * (its user in *USER, unless USER is NULL), else NULL
 * (engine/provisioned.c's provisioned_find_ns). */
struct prov_spec;
typedef const struct prov_spec *(*listener_owner_fn)(void *arg,
						      const char *ns,
						      const char **user);
void listener_set_owner(struct listener_set *set, listener_owner_fn fn,
			void *arg);

/* Out of descriptors (ERR is the errno): pause every listener, resume
 * them on a timer; one log line a second at most.  Also for other
 * modules' listening sockets (see listener_set_watch). */
void listener_set_shortage(struct listener_set *set, int err);

/* Another module's listening socket (the control socket, /metrics) pauses
 * with the relay's listeners: FN(ARG, true) when a descriptor shortage
 * begins (at once if one is on), FN(ARG, false) when it ends.  NULL on
 * ENOMEM.  listener_watch_free() (NULL is fine) before the set goes. */
struct listener_watch;
struct listener_watch *listener_set_watch(struct listener_set *set,
					  void (*fn)(void *arg, bool paused),
					  void *arg);
void listener_watch_free(struct listener_watch *w);

/* Is accepting paused for a descriptor shortage now? */
bool listener_set_short(const struct listener_set *set);

/* N descriptors for another module's client (a control client, a metrics
 * connection), counted in the budget the relay's connections see.  With
 * RESERVE the reserve may be used (root's control clients: a login must
 * not fail because tenants hold every connection); without, false when
 * only the reserve is left, and a shortage begins (the caller closes its
 * client).  listener_set_fd_put() gives them back. */
bool listener_set_fd_take(struct listener_set *set, unsigned n, bool reserve);
void listener_set_fd_put(struct listener_set *set, unsigned n);

unsigned listener_set_open_count(const struct listener_set *set);
/* Live connections and datagram flows. */
uint64_t listener_set_conn_count(const struct listener_set *set);

/* A group for namespace NAME with limits LIM.  NULL on ENOMEM. */
struct listener_group *listener_group_new(struct listener_set *set,
					  const char *name,
					  const struct listener_limits *lim);
/* Close and detach every listener (connections live on), drop the
 * table's reference. */
void listener_group_free(struct listener_group *g);

/* A closed listener of SVC on ADDR in group G.  NULL on ENOMEM. */
struct listener *listener_new(struct listener_group *g,
			      const struct config_service *svc,
			      const struct config_sockaddr *addr);

/* A reload: new connections of L follow SVC (upstream, timeouts); live
 * ones keep their upstream and read the new timeouts.  SVC has L's
 * service's name.  0 or -ENOMEM. */
int listener_set_service(struct listener *l, const struct config_service *svc);

/* A reload: the live connections of listeners of G that are gone (a
 * listen address removed or replaced) follow SVC's timeouts too, when
 * their service is SVC's.  0 or -ENOMEM. */
int listener_group_follow(struct listener_group *g,
			  const struct config_service *svc);

/* Close L and take it out of its group's members: its live connections go
 * on, counted with its service. */
void listener_remove(struct listener *l);

/* New limits for a group, and every pause of its listeners decided again
 * from what they are now, as if the daemon had started with them: the
 * namespace's limits, each service's own (a reload may have raised,
 * lowered or removed one). */
void listener_group_limits(struct listener_group *g,
			   const struct listener_limits *lim);

/* Is there room in the descriptor budget for another listening socket? */
bool listener_set_room(const struct listener_set *set);
/* ... for how many? */
size_t listener_set_room_for(const struct listener_set *set);

/* L listens on FD from now on (a listening socket made in its namespace
 * by the privileged helper): it is watched and accepts.  Takes FD. */
void listener_listen_fd(struct listener *l, int fd);

/* L could not be opened: ERR (an errno, either sign) at step WHAT (a
 * static string); it is FAILED, and retried by its namespace. */
void listener_failed(struct listener *l, int err, const char *what);
void listener_close(struct listener *l);
#endif
