/* SPDX-License-Identifier: MIT */
/* listener: listening sockets, and the guards around accepting.
 *
 * Theory of operation
 *
 * A listening socket is made inside its namespace by the privileged
 * helper (netns/nsops.c: made there, bound and listened to from the
 * host; IP_FREEBIND lets it bind before the namespace's lo is up;
 * TCP_NODELAY, which accepted sockets inherit) and handed over; here it is
 * watched by one event embedded in the listener (an evconnlistener would
 * be one more allocation for each of thousands of listeners).  Deferred
 * accept is never used: MySQL, SMTP and IMAP speak first, so a client may
 * never send a byte on its own.  When and where to open listeners is the
 * namespace table's business (nstable.c); this file holds, closes and
 * guards them.
 *
 * Sharing, so that one listener, one namespace or one shortage cannot hurt
 * the rest, and without a fixed cap that would throttle a busy namespace
 * on an idle host (work-conserving, the way a fair queue is):
 *  - accepting, round-robin between namespaces: a listening socket's event
 *    is level-triggered, so a listener with clients waiting is ready at
 *    every loop turn.  In one turn a namespace accepts ACCEPT_QUANTUM
 *    connections at most (ACCEPT_QUANTUM_SHARED while another namespace
 *    has live connections), each of its listeners its part of that (the
 *    quantum divided by its listeners, at least 1); what is left waits in
 *    the backlog for the next turn, after every other ready namespace had
 *    its quantum and every relay event its turn.  So a flood from one
 *    namespace puts at most one quantum of accept and connect work in
 *    front of another namespace's connection, and a namespace alone takes
 *    every turn: its share shrinks only while others are waiting.  No
 *    timer and no epoll_ctl: the kernel's readiness is the queue;
 *  - descriptors, the one budget that a namespace keeps (its live
 *    connections hold two each, its datagram flows one): a namespace may
 *    use what is free.  Once connections, flows and pipes hold three
 *    quarters of what is theirs (the limit less the reserve, the
 *    listeners and other modules' clients), the budget runs short, and a
 *    namespace whose descriptors reach its fair share, that budget
 *    divided by the busy namespaces plus one (room for one not yet busy),
 *    is held: its clients wait in its backlog (a datagram namespace makes
 *    room among its own flows: engine/dgram.c) while the namespaces below
 *    their share are still served from the last quarter.  It resumes when
 *    a connection or flow ends anywhere and it is below its share again
 *    or the budget is no longer short;
 *  - limits an admin sets, off by default (struct listener_group, and a
 *    service's own cap in its tally): at most lim.conns live connections
 *    and lim.rate new ones a second (a token bucket of lim.burst), per
 *    namespace.  At a limit every listener of that namespace pauses, the
 *    other namespaces go on; it resumes when a connection closes or the
 *    bucket refills;
 *  - whatever holds a namespace back is counted by reason
 *    (enum listener_hold), with one log line per namespace and reason
 *    every LIMIT_LOG_S seconds at most; how long its clients waited to be
 *    accepted is a histogram: the kernel's age of the connection (TCP_INFO,
 *    since the handshake's last ACK) when it may have waited in the
 *    backlog, else the loop's own delay since it saw the listener ready;
 *  - a last line of defence: once a connection would eat into the
 *    reserve it is reset at once and accepting pauses as under a shortage;
 *  - descriptor shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM): libevent's
 *    listener would retry accept() at once forever.  The error callback
 *    disables every listener and a timer resumes them, backing off from
 *    100 ms to 1 s while the shortage lasts; one log line a second at most.
 *
 * A listener is referenced by its group and by each live connection, so
 * closing it (namespace gone, shutdown) never cuts a connection; a group
 * is referenced by the table and by each of its listeners.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config/config.h"
#include "engine/dgram.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/proxyhdr.h"
#include "netns/netns.h"
#include "netns/pool.h"

/* Accepts per namespace and loop turn at most: a round of the
 * round-robin.  Large enough that a lone namespace's accepts cost few loop
 * turns; while another namespace has live connections, one, so that a
 * flood puts little in front of the other's every step: a MySQL page is
 * some ten round trips through the relay, each waiting for a turn.
 * Measured (db-bench.sh, contention rows: A 64 connect/echo/close loops,
 * B 4 PHP page loops): with 16 a turn B kept 0.22 of its quiet pages, with
 * 4 0.29, with 1 0.46, while A still had 0.51 of its lone rate. */
#define ACCEPT_QUANTUM		16
#define ACCEPT_QUANTUM_SHARED	1
#define FD_PAUSE_MIN_MS		100
#define FD_PAUSE_MAX_MS		1000
#define LIMIT_LOG_S		10
/* Connections waiting in the backlog of a listener a reload closes that
 * are accepted first, at most (the rest are reset by the kernel). */
#define DRAIN_MAX		256

TAILQ_HEAD(listener_list, listener);

/* Another module's listening socket, paused under a shortage too. */
struct listener_watch {
	LIST_ENTRY(listener_watch) entry;
	struct listener_set *set;
	void (*fn)(void *arg, bool paused);
	void *arg;
};

/* Settings shared by listeners: 4,000 namespaces with the same 4 services
 * hold 4 copies, not 16,000. */
struct listener_svc {
	TAILQ_ENTRY(listener_svc) entry;
	unsigned refs;
	struct config_service svc;	/* name owned; no lists */
};
struct listener_addr {
	TAILQ_ENTRY(listener_addr) entry;
	unsigned refs;
	struct config_sockaddr a;
};
TAILQ_HEAD(listener_svc_list, listener_svc);
TAILQ_HEAD(listener_addr_list, listener_addr);

struct listener_set {
	struct event_base *base;
	struct relay_set *relays;
	struct dgram_set *dgrams;	/* flows of datagram services */
	struct listener_list all;
	struct listener_svc_list svcs;
	struct listener_addr_list addrs;
	unsigned open;			/* listening sockets */
	long fd_limit;
	unsigned reserve;
	unsigned others;		/* descriptors of other modules'
					 * clients (listener_set_fd_take) */
	unsigned busy;			/* groups with live connections */
	TAILQ_HEAD(, listener_group) fair_held;	/* held at their share */
	LIST_HEAD(, listener_watch) watches;	/* paused with the rest */

	/* memory after a burst: given back once half of it has gone */
	uint64_t peak;			/* connections since the last trim */
	struct event *trim;

	/* descriptor shortage: all listeners paused, one timer resumes */
	bool fd_paused;
	struct event *fd_timer;
	uint64_t fd_failures;		/* since the last report */
	struct timeval fd_reported;
	uint64_t fd_pause_ms;		/* how long the next pause lasts */

	listener_owner_fn owner;	/* provisioned namespaces; NULL none */
	void *owner_arg;
};

static void ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static const char *const hold_names[LISTENER_HOLD_MAX] = {
	[LISTENER_HOLD_FAIR_SHARE] = "fair_share",
	[LISTENER_HOLD_CONNECTIONS] = "connections",
	[LISTENER_HOLD_RATE] = "rate",
	[LISTENER_HOLD_SERVICE] = "service",
};

const char *listener_hold_name(enum listener_hold h)
{
	return h < LISTENER_HOLD_MAX ? hold_names[h] : "?";
}

const uint64_t listener_wait_le_us[LISTENER_WAIT_BUCKETS - 1] = {
	1000, 10000, 100000, 1000000, 10000000,
};

static void wait_add(struct listener_waits *w, uint64_t us)
{
	unsigned i = 0;

	while (i < LISTENER_WAIT_BUCKETS - 1 && us > listener_wait_le_us[i])
		i++;
	w->bucket[i]++;
	w->count++;
	w->sum_us += us;
}

/* ---- groups -------------------------------------------------------- */

static void group_unref(struct listener_group *g)
{
	if (--g->refs)
		return;
	if (g->fair_held)
		TAILQ_REMOVE(&g->set->fair_held, g, fair_entry);
	event_free(g->resume);
	free(g->name);
	free(g);
}

/* Should L accept now?  Not while a shortage, an error, its service's
 * limit, its namespace's limits or its fair share hold it. */
static bool may_accept(const struct listener *l)
{
	return !l->set->fd_paused && !l->err_paused && !l->tally->held &&
	       !l->grp->held && !l->grp->fair_held;
}

static void listener_update(struct listener *l);

/* ---- tallies --------------------------------------------------------- */

/* The tally of service NAME in G, made if it has none.  NULL on ENOMEM. */
static struct listener_tally *tally_get(struct listener_group *g,
					const char *name)
{
	struct listener_tally *t;

	TAILQ_FOREACH(t, &g->tallies, entry)
		if (!strcmp(t->name, name)) {
			t->refs++;
			return t;
		}
	if (!(t = calloc(1, sizeof(*t))) || !(t->name = strdup(name))) {
		free(t);
		return NULL;
	}
	t->refs = 1;
	TAILQ_INSERT_TAIL(&g->tallies, t, entry);
	return t;
}

static void tally_put(struct listener_group *g, struct listener_tally *t)
{
	if (!t || --t->refs)
		return;
	TAILQ_REMOVE(&g->tallies, t, entry);
	free(t->name);
	free(t);
}

/* A service's own limit in a namespace (limits.connections_per_namespace
 * of the service): the live connections of all its listeners there, the
 * tally's.  Pause or resume them together; with no limit (a reload may
 * have removed it) nothing holds them. */
static void tally_check(struct listener_group *g, struct listener_tally *t)
{
	unsigned cap = 0;
	struct listener *o;
	bool hold;

	TAILQ_FOREACH(o, &g->members, entry)
		if (o->tally == t) {
			cap = o->origin.svc->limits.conns;
			break;
		}
	hold = cap && t->cnt.active >= cap;
	if (hold == t->held)
		return;
	t->held = hold;
	TAILQ_FOREACH(o, &g->members, entry)
		if (o->tally == t)
			listener_update(o);
	if (hold)
		g->holds[LISTENER_HOLD_SERVICE]++;
	if (hold)
		log_debug("ns %s: %s: service connection limit %u reached",
			  g->name, t->name, cap);
}

static void listener_update(struct listener *l)
{
	bool want;

	if (l->dport) {
		/* a held namespace still reads: its flows' datagrams go
		 * on, new flows are what its holds refuse (udp_admit) */
		dgram_port_enable(l->dport, !l->set->fd_paused &&
					    !l->err_paused);
		return;
	}
	want = l->fd >= 0 && may_accept(l);

	if (want == l->enabled)
		return;
	l->enabled = want;
	if (want) {
		event_add(&l->ev, NULL);
	} else {
		event_del(&l->ev);
		l->behind = true;	/* clients may queue meanwhile */
	}
}

static void group_update(struct listener_group *g)
{
	struct listener *l;

	TAILQ_FOREACH(l, &g->members, entry)
		listener_update(l);
}

static void group_refill(struct listener_group *g, const struct timeval *now)
{
	struct timeval dt;
	double add;

	if (!g->lim.rate)
		return;
	timersub(now, &g->refill, &dt);
	add = ((double)dt.tv_sec + (double)dt.tv_usec / 1e6) * g->lim.rate;
	g->refill = *now;
	g->tokens += add;
	if (g->tokens > g->lim.burst)
		g->tokens = g->lim.burst;
}

/* A hold of G for WHY began: counted, and one log line per reason every
 * LIMIT_LOG_S at most, so that one does not hide another. */
static void hold_note(struct listener_group *g, enum listener_hold why,
		      const struct timeval *now)
{
	static const char *const text[LISTENER_HOLD_MAX] = {
		[LISTENER_HOLD_FAIR_SHARE] = "above its fair share of the "
			"descriptors while they run short",
		[LISTENER_HOLD_CONNECTIONS] = "connection limit reached",
		[LISTENER_HOLD_RATE] = "connection rate limit reached",
	};

	g->holds[why]++;
	g->held_count[why]++;
	if (now->tv_sec - g->logged[why].tv_sec < LIMIT_LOG_S)
		return;
	log_warnx("ns %s: %s: accepting paused (%llu times since the "
		  "last report; %llu connections live)", g->name, text[why],
		  (unsigned long long)g->held_count[why],
		  (unsigned long long)g->active);
	g->logged[why] = *now;
	g->held_count[why] = 0;
}

/* Pause G at a limit it was given. */
static void group_hold(struct listener_group *g, enum listener_hold why,
		       const struct timeval *now)
{
	if (g->held)
		return;
	g->held = true;
	hold_note(g, why, now);
	group_update(g);
}

/* Re-check the limits of G; pause or resume its listeners. */
static void group_check(struct listener_group *g)
{
	struct timeval now, tv;

	event_base_gettimeofday_cached(g->set->base, &now);
	group_refill(g, &now);
	if (g->lim.conns && g->active >= g->lim.conns) {
		group_hold(g, LISTENER_HOLD_CONNECTIONS, &now);
		return;
	}
	if (g->lim.rate && g->tokens < 1) {
		double wait = (1 - g->tokens) / g->lim.rate;

		group_hold(g, LISTENER_HOLD_RATE, &now);
		tv.tv_sec = (time_t)wait;
		tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6) + 1;
		evtimer_add(g->resume, &tv);
		return;
	}
	if (g->held) {
		g->held = false;
		group_update(g);
	}
}

static void group_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	group_check(arg);
}

struct listener_group *listener_group_new(struct listener_set *set,
					  const char *name,
					  const struct listener_limits *lim)
{
	struct listener_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->name = strdup(name);
	g->resume = evtimer_new(set->base, group_resume_cb, g);
	if (!g->name || !g->resume) {
		free(g->name);
		if (g->resume)
			event_free(g->resume);
		free(g);
		return NULL;
	}
	TAILQ_INIT(&g->members);
	TAILQ_INIT(&g->retired);
	TAILQ_INIT(&g->tallies);
	g->set = set;
	g->lim = *lim;
	g->tokens = lim->burst;
	event_base_gettimeofday_cached(set->base, &g->refill);
	g->refs = 1;
	return g;
}

static void listener_unref(struct listener *l);

void listener_group_free(struct listener_group *g)
{
	struct listener *l;

	if (!g)
		return;
	while ((l = TAILQ_FIRST(&g->members)))
		listener_remove(l);
	evtimer_del(g->resume);
	group_unref(g);
}

/* ---- shared settings ----------------------------------------------- */

static bool same_service(const struct config_service *a,
			 const struct config_service *b)
{
	return !strcmp(a->name, b->name) &&
	       a->upstream.len == b->upstream.len &&
	       !memcmp(&a->upstream.sa, &b->upstream.sa, a->upstream.len) &&
	       !strcmp(a->upstream.text, b->upstream.text) &&
	       a->connect_timeout_ms == b->connect_timeout_ms &&
	       a->idle_timeout_ms == b->idle_timeout_ms &&
	       a->fin_timeout_ms == b->fin_timeout_ms &&
	       a->limits.conns == b->limits.conns &&
	       a->limits.rate == b->limits.rate &&
	       a->limits.burst == b->limits.burst;
}

static struct listener_svc *svc_get(struct listener_set *set,
				    const struct config_service *svc)
{
	struct listener_svc *x;

	TAILQ_FOREACH(x, &set->svcs, entry)
		if (same_service(&x->svc, svc)) {
			x->refs++;
			return x;
		}
	if (!(x = calloc(1, sizeof(*x))))
		return NULL;
	x->svc = *svc;
	/* not needed past this point, and owned by the config */
	x->svc.listen = NULL;
	x->svc.n_listen = 0;
	x->svc.namespaces = NULL;
	x->svc.n_namespaces = 0;
	if (!(x->svc.name = strdup(svc->name))) {
		free(x);
		return NULL;
	}
	x->refs = 1;
	TAILQ_INSERT_TAIL(&set->svcs, x, entry);
	return x;
}

static void svc_put(struct listener_set *set, struct listener_svc *x)
{
	if (!x || --x->refs)
		return;
	TAILQ_REMOVE(&set->svcs, x, entry);
	free(x->svc.name);
	free(x);
}

static struct listener_addr *addr_get(struct listener_set *set,
				      const struct config_sockaddr *a)
{
	struct listener_addr *x;

	TAILQ_FOREACH(x, &set->addrs, entry)
		if (x->a.len == a->len && !memcmp(&x->a.sa, &a->sa, a->len) &&
		    !strcmp(x->a.text, a->text)) {
			x->refs++;
			return x;
		}
	if (!(x = calloc(1, sizeof(*x))))
		return NULL;
	x->a = *a;
	x->refs = 1;
	TAILQ_INSERT_TAIL(&set->addrs, x, entry);
	return x;
}

static void addr_put(struct listener_set *set, struct listener_addr *x)
{
	if (!x || --x->refs)
		return;
	TAILQ_REMOVE(&set->addrs, x, entry);
	free(x);
}

/* ---- listeners ----------------------------------------------------- */

static void listener_unref(struct listener *l)
{
	if (--l->refs)
		return;
	if (l->retired)
		TAILQ_REMOVE(&l->grp->retired, l, entry);
	TAILQ_REMOVE(&l->set->all, l, all);
	tally_put(l->grp, l->tally);
	if (l->err_timer)
		event_free(l->err_timer);
	svc_put(l->set, l->svc);
	addr_put(l->set, l->addr_ref);
	group_unref(l->grp);	/* origin.ns_name is its name */
	free(l);
}

int listener_set_service(struct listener *l, const struct config_service *svc)
{
	struct listener_svc *x = svc_get(l->set, svc);

	if (!x)
		return -ENOMEM;
	svc_put(l->set, l->svc);
	l->svc = x;
	l->origin.svc = &x->svc;
	return 0;
}

int listener_group_follow(struct listener_group *g,
			  const struct config_service *svc)
{
	struct listener *l;

	TAILQ_FOREACH(l, &g->retired, entry)
		if (!strcmp(l->tally->name, svc->name) &&
		    listener_set_service(l, svc) < 0)
			return -ENOMEM;
	return 0;
}

static void accept_one(struct listener *l, int fd, struct sockaddr *sa);

/* Accept what waits in L's backlog, DRAIN_MAX at most, before its socket
 * closes: the kernel would reset those clients, which had connected. */
static void listener_drain(struct listener *l)
{
	unsigned n = 0;

	l->behind = true;
	while (l->fd >= 0 && !l->dport && n < DRAIN_MAX) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		accept_one(l, fd, len ? (struct sockaddr *)&ss : NULL);
		n++;
	}
	if (n)
		log_info("ns %s: %s %s: %u connections waiting in the backlog "
			 "accepted before closing", l->grp->name,
			 l->origin.svc->name, l->addr->text, n);
}

void listener_remove(struct listener *l)
{
	struct listener_group *g = l->grp;
	struct listener_tally *t = l->tally;
	bool last;

	listener_drain(l);
	TAILQ_REMOVE(&g->members, l, entry);
	g->n_members--;
	listener_close(l);
	/* after the close: a udp listener's flows end with it */
	last = t->refs == 1 && l->refs == 1;
	if (l->refs > 1) {
		/* its connections live on: counted with the service */
		TAILQ_INSERT_TAIL(&g->retired, l, entry);
		l->retired = true;
	}
	listener_unref(l);
	/* the service's hold may have been this listener's to lift */
	if (!last && t->held)
		tally_check(g, t);
}

void listener_group_limits(struct listener_group *g,
			   const struct listener_limits *lim)
{
	struct listener_tally *t;

	g->lim = *lim;
	if (!lim->rate)
		g->tokens = lim->burst;
	else if (g->tokens > lim->burst)
		g->tokens = lim->burst;
	evtimer_del(g->resume);
	group_check(g);
	TAILQ_FOREACH(t, &g->tallies, entry)
		tally_check(g, t);
	group_update(g);
}

/* A burst of connections has mostly gone: glibc keeps the heap it grew
 * (M_TRIM_THRESHOLD is high for bulk transfers), so give it back: a second
 * after the burst halved, or at once when its last connection ends. */
static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener_set *set = arg;

	set->peak = relay_count(set->relays);
	malloc_trim(0);
}

#define TRIM_MIN_PEAK	256

/* ---- fair share of the descriptors ---------------------------------- */

/* Descriptors the budget counts: listeners, two per connection and per
 * pipe of the splice path, one per datagram flow, other modules'
 * clients. */
static long fds_in_use(const struct listener_set *set)
{
	return (long)(2 * relay_count(set->relays) +
		      2 * relay_pipe_count(set->relays) +
		      dgram_count(set->dgrams) + set->open + set->others);
}

/* What connections and pipes may hold: the limit less the reserve, the
 * listening sockets and other modules' clients. */
static long conn_budget(const struct listener_set *set)
{
	return set->fd_limit - (long)set->reserve - (long)set->open -
	       (long)set->others;
}

/* Do connections and pipes hold three quarters of their budget? */
static bool budget_short(const struct listener_set *set)
{
	long used = 2 * (long)relay_count(set->relays) +
		    2 * (long)relay_pipe_count(set->relays) +
		    (long)dgram_count(set->dgrams);

	return 4 * used >= 3 * conn_budget(set);
}

/* A namespace's fair share of descriptors (for its connections and
 * flows) while the budget is short: the budget over the busy namespaces
 * and one more that may come. */
static uint64_t fair_share(const struct listener_set *set)
{
	long b = conn_budget(set);

	return b > 0 ? (uint64_t)b / (set->busy + 1) : 0;
}

/* G took a connection: hold it if it is at its share of a short budget. */
static void fair_check(struct listener_group *g)
{
	struct listener_set *set = g->set;
	struct timeval now;

	if (g->fair_held || !budget_short(set) || g->fds < fair_share(set))
		return;
	g->fair_held = true;
	TAILQ_INSERT_TAIL(&set->fair_held, g, fair_entry);
	event_base_gettimeofday_cached(set->base, &now);
	hold_note(g, LISTENER_HOLD_FAIR_SHARE, &now);
	group_update(g);
}

/* A connection ended somewhere: let go of the held namespaces that are
 * below their share now, or all of them once the budget is not short. */
static void fair_recheck(struct listener_set *set)
{
	struct listener_group *g, *next;
	bool short_now;
	uint64_t share;

	if (TAILQ_EMPTY(&set->fair_held))
		return;
	short_now = budget_short(set);
	share = fair_share(set);
	for (g = TAILQ_FIRST(&set->fair_held); g; g = next) {
		next = TAILQ_NEXT(g, fair_entry);
		if (short_now && g->fds >= share)
			continue;
		TAILQ_REMOVE(&set->fair_held, g, fair_entry);
		g->fair_held = false;
		group_update(g);
	}
}

/* A connection of L ended. */
static void conn_closed(struct relay_origin *o, enum relay_close why)
{
	struct listener *l = (struct listener *)o;
	struct listener_group *g = l->grp;
	struct listener_set *set = l->set;
	uint64_t live = relay_count(set->relays);

	if (why != RELAY_CLOSE_DONE) {
		l->tally->last_fail = why;
		gettimeofday(&l->tally->last_fail_at, NULL);
	}

	if (set->peak >= TRIM_MIN_PEAK && !live) {
		/* the burst is over: now, not a second later */
		evtimer_del(set->trim);
		trim_cb(-1, 0, set);
	} else if (set->peak >= TRIM_MIN_PEAK && live < set->peak / 2 &&
		   !evtimer_pending(set->trim, NULL)) {
		static const struct timeval second = { 1, 0 };

		evtimer_add(set->trim, &second);
	}
	g->fds -= l->dgram ? 1 : 2;
	if (!--g->active)
		set->busy--;
	if (g->held)
		group_check(g);
	if (l->tally->held)
		tally_check(g, l->tally);
	fair_recheck(set);
	listener_unref(l);
}

static void err_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	l->err_paused = false;
	listener_update(l);
}

/* Pause L until TV from now; without memory for the timer it goes on. */
static void err_pause(struct listener *l, const struct timeval *tv)
{
	if (!l->err_timer &&
	    !(l->err_timer = evtimer_new(l->set->base, err_cb, l)))
		return;
	l->err_paused = true;
	listener_update(l);
	evtimer_add(l->err_timer, tv);
}

struct listener *listener_new(struct listener_group *g,
			      const struct config_service *svc,
			      const struct config_sockaddr *addr)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->set = g->set;
	if (listener_set_service(l, svc) < 0 ||
	    !(l->addr_ref = addr_get(g->set, addr)) ||
	    !(l->tally = tally_get(g, svc->name))) {
		svc_put(g->set, l->svc);
		addr_put(g->set, l->addr_ref);
		free(l);
		return NULL;
	}
	l->fd = -1;
	l->listen_pending = -1;
	l->dgram = svc->protocol == CONFIG_PROTO_UDP;
	l->origin.ns_name = g->name;	/* the group outlives it */
	l->origin.cnt = &l->tally->cnt;
	l->origin.closed = conn_closed;
	l->grp = g;
	l->addr = &l->addr_ref->a;
	l->refs = 1;
	g->refs++;
	g->n_members++;
	TAILQ_INSERT_TAIL(&g->members, l, entry);
	TAILQ_INSERT_TAIL(&g->set->all, l, all);
	return l;
}

static void reset_close(int fd)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	close(fd);
}

/* How long the client on FD waited to be accepted, into L's group's
 * histogram: when it may have waited in the backlog (L was held, or its
 * last turn ended with clients left), the kernel's age of the connection
 * (TCP_INFO: since the handshake's last ACK, in jiffies); else the loop's
 * delay since it saw L ready (NOW, its cached time), with no system call
 * (gettimeofday is in the vDSO). */
static void record_wait(struct listener *l, int fd, const struct timeval *now)
{
	struct timeval real, d;
	uint64_t us = 0;

	if (l->behind) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
		    len >= offsetof(struct tcp_info, tcpi_last_ack_recv) +
			   sizeof(ti.tcpi_last_ack_recv))
			us = (uint64_t)ti.tcpi_last_ack_recv * 1000;
	} else {
		gettimeofday(&real, NULL);
		if (timercmp(&real, now, >)) {
			timersub(&real, now, &d);
			us = (uint64_t)d.tv_sec * 1000000 + (uint64_t)d.tv_usec;
		}
	}
	wait_add(&l->grp->waits, us);
}

void listener_set_owner(struct listener_set *set, listener_owner_fn fn,
			void *arg)
{
	set->owner = fn;
	set->owner_arg = arg;
}

/* Who owns L's namespace (NULL: nsrelayd did not provision it; its user
 * in *USER unless USER is NULL), with source: namespace the upstream
 * socket's address in ID: what connections and datagram flows share. */
static const struct prov_spec *source_of(const struct listener *l,
					 struct relay_ident *id,
					 const char **user)
{
	const struct prov_spec *spec = NULL;

	if (l->set->owner)
		spec = l->set->owner(l->set->owner_arg, l->origin.ns_name,
				     user);
	if (spec && l->origin.svc->source == CONFIG_SOURCE_NAMESPACE) {
		id->bind = true;
		id->src4 = spec->v4_host;
		id->src6 = spec->v6_host;
	}
	return spec;
}

/* What the upstream learns of a connection FD from SA on L (the
 * service's proxy_protocol and source), into ID, its header in BUF.
 * The header's source is the namespace's own address (of the listener's
 * family) when nsrelayd provisioned it, else the client's address as
 * seen in the namespace, with the client's port either way; its
 * destination the address the client reached; v2 adds the namespace's
 * name and the provisioned user and uid.  source: namespace binds the
 * upstream socket to the host end of a provisioned namespace's veth;
 * elsewhere nothing.  0 or -errno. */
static int identify(struct listener *l, int fd, const struct sockaddr *sa,
		    uint8_t *buf, size_t cap, struct relay_ident *id)
{
	const struct relay_origin *o = &l->origin;
	const char *user = NULL;
	const struct prov_spec *spec = source_of(l, id, &user);
	struct sockaddr_storage src, dst;
	socklen_t len = sizeof(dst);
	int n;

	if (o->svc->proxy_protocol == CONFIG_PROXY_OFF)
		return 0;
	if (!sa || getsockname(fd, (struct sockaddr *)&dst, &len) < 0 ||
	    dst.ss_family != sa->sa_family)
		return -EINVAL;
	memset(&src, 0, sizeof(src));
	memcpy(&src, sa, sa->sa_family == AF_INET6 ?
	       sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	if (spec && src.ss_family == AF_INET)
		((struct sockaddr_in *)&src)->sin_addr = spec->v4_ns;
	else if (spec && src.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&src)->sin6_addr = spec->v6_ns;
	n = proxyhdr_build(buf, cap,
			   (enum proxyhdr_version)o->svc->proxy_protocol,
			   (struct sockaddr *)&src, (struct sockaddr *)&dst,
			   o->ns_name, spec ? user : NULL,
			   spec ? (int64_t)spec->uid : -1);
	if (n < 0)
		return n;
	id->hdr = buf;
	id->hdr_len = (size_t)n;
	return 0;
}

/* L started a connection (or a datagram flow) at NOW: it holds L and
 * counts in its namespace's live ones, tokens and holds. */
static void count_new(struct listener *l, const struct timeval *now)
{
	struct listener_group *g = l->grp;

	l->refs++;
	g->fds += l->dgram ? 1 : 2;
	if (!g->active++)
		l->set->busy++;
	if (g->lim.rate) {
		/* refill first: without it, the time before a burst would
		 * be counted again once the burst has used the bucket up */
		group_refill(g, now);
		g->tokens -= 1;
	}
	if ((g->lim.conns && g->active >= g->lim.conns) ||
	    (g->lim.rate && g->tokens < 1))
		group_check(g);
	if (l->origin.svc->limits.conns)
		tally_check(g, l->tally);
	fair_check(g);
}

static void accept_one(struct listener *l, int fd, struct sockaddr *sa)
{
	uint8_t hdr[PROXYHDR_MAX];
	struct relay_ident id = { 0 };
	int err;
	struct listener_set *set = l->set;
	struct timeval now;

	/* two descriptors per connection and per pipe of the splice path,
	 * the reserve kept for the rest */
	if (fds_in_use(set) + set->reserve >= set->fd_limit) {
		reset_close(fd);
		l->tally->cnt.closed[RELAY_CLOSE_NO_RESOURCES]++;
		l->tally->last_fail = RELAY_CLOSE_NO_RESOURCES;
		gettimeofday(&l->tally->last_fail_at, NULL);
		listener_set_shortage(set, EMFILE);
		return;
	}
	event_base_gettimeofday_cached(set->base, &now);
	record_wait(l, fd, &now);
	if (l->origin.svc->proxy_protocol != CONFIG_PROXY_OFF ||
	    l->origin.svc->source != CONFIG_SOURCE_DEFAULT) {
		err = identify(l, fd, sa, hdr, sizeof(hdr), &id);
		if (err < 0) {
			/* never a connection without its header */
			log_warnx("ns %s: %s: no PROXY header for a "
				  "connection: %s", l->origin.ns_name,
				  l->origin.svc->name, strerror(-err));
			reset_close(fd);
			l->tally->cnt.closed[RELAY_CLOSE_NO_RESOURCES]++;
			return;
		}
	}
	if (relay_start_id(set->relays, &l->origin, fd, sa, &id) < 0)
		return;
	if (relay_count(set->relays) > set->peak)
		set->peak = relay_count(set->relays);
	count_new(l, &now);
}

/* A datagram from PEER on L needs a new flow (engine/dgram.c): the guards
 * accept_one() and the held listeners apply, told apart: a namespace at
 * a count of live flows (its own or a service's limit, its fair share)
 * may make room among its own flows, and the new one then takes the
 * place of the one that ended (IN_PLACE: the counts do not hold it); one
 * out of descriptors or tokens drops the datagram.  ID: source:
 * namespace, as for a connection. */
static enum dgram_admit udp_admit(void *arg, const struct sockaddr *peer,
				  bool in_place, struct relay_ident *id,
				  enum relay_drop *drop)
{
	struct listener *l = arg;
	struct listener_set *set = l->set;
	struct listener_group *g = l->grp;
	struct timeval now;

	(void)peer;
	if (set->fd_paused || fds_in_use(set) + set->reserve >= set->fd_limit) {
		*drop = RELAY_DROP_NO_RESOURCES;
		return DGRAM_ADMIT_NO;
	}
	event_base_gettimeofday_cached(set->base, &now);
	if (g->lim.rate) {
		group_refill(g, &now);
		if (g->tokens < 1) {
			*drop = RELAY_DROP_LIMIT;
			return DGRAM_ADMIT_NO;
		}
	}
	if (!in_place && (l->tally->held || g->held || g->fair_held))
		return DGRAM_ADMIT_FULL;
	if (l->origin.svc->source != CONFIG_SOURCE_DEFAULT)
		source_of(l, id, NULL);
	count_new(l, &now);
	return DGRAM_ADMIT_OK;
}

static bool fd_shortage(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	       err == ENOMEM;
}

static void accept_error(struct listener *l, int err)
{
	struct timeval tv = { 1, 0 };

	if (fd_shortage(err)) {
		listener_set_shortage(l->set, err);
		return;
	}
	/* anything else: this listener only, once a second at most */
	log_warnx("ns %s: %s %s: accept: %s", l->origin.ns_name,
		  l->origin.svc->name, l->addr->text, strerror(err));
	err_pause(l, &tv);
}

/* L's socket is readable: accept while it has connections, L may, and it
 * has its part of its namespace's quantum left (the rest waits for the
 * next turn: the event is level-triggered and comes again).  libevent
 * runs an event's callback at most once a loop turn, so each call is a
 * turn of its own, and a namespace's listeners together take at most
 * ACCEPT_QUANTUM a turn.  (A turn told by the loop's cached time instead
 * lasted as long as that time did not change: the coarse monotonic
 * clock's 4 ms, which held a namespace of 4 listeners to 1,000
 * connections a second while the loop spun on the ready listener.) */
static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	struct listener_group *g = l->grp;
	/* others busy: a smaller round (the group itself counts in busy
	 * once it has a live connection) */
	unsigned others = l->set->busy - (g->active ? 1 : 0);
	unsigned q = others ? ACCEPT_QUANTUM_SHARED : ACCEPT_QUANTUM;
	unsigned mine = q / (g->n_members ? g->n_members : 1);

	(void)what;
	if (!mine)
		mine = 1;
	for (unsigned n = 0; l->enabled && n < mine; n++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN)
				l->behind = false;	/* drained */
			else
				accept_error(l, errno);
			return;
		}
		accept_one(l, fd, len ? (struct sockaddr *)&ss : NULL);
	}
	l->behind = true;	/* clients left for the next turn */
}

bool listener_set_room(const struct listener_set *set)
{
	return (long)(set->open + set->reserve) < set->fd_limit;
}

size_t listener_set_room_for(const struct listener_set *set)
{
	long n = set->fd_limit - (long)(set->open + set->reserve);

	return n > 0 ? (size_t)n : 0;
}

void listener_listen_fd(struct listener *l, int fd)
{
	struct listener_set *set = l->set;

	if (l->state == LISTENER_LISTENING) {
		close(fd);
		return;
	}
	if (l->dgram) {
		if (!(l->dport = dgram_port_new(set->dgrams, &l->origin, fd,
						udp_admit, l))) {
			listener_failed(l, ENOMEM, "socket");
			return;
		}
		l->fd = fd;
		listener_update(l);
	} else {
		l->fd = fd;
		l->enabled = false;
		event_assign(&l->ev, set->base, fd, EV_READ | EV_PERSIST,
			     accept_cb, l);
		listener_update(l);
	}
	set->open++;
	l->state = LISTENER_LISTENING;
	l->err = 0;
	l->err_what = NULL;
}

void listener_failed(struct listener *l, int err, const char *what)
{
	l->state = LISTENER_FAILED;
	l->err = err < 0 ? -err : err;
	l->err_what = what;
	gettimeofday(&l->err_at, NULL);
}

void listener_close(struct listener *l)
{
	if (l->dport) {
		/* its flows end: nothing could answer them (taken from L
		 * first: their ends update L's group, L included) */
		struct dgram_port *p = l->dport;

		l->dport = NULL;
		l->fd = -1;
		l->set->open--;
		dgram_port_free(p);
	} else if (l->fd >= 0) {
		if (l->enabled)
			event_del(&l->ev);
		l->enabled = false;
		close(l->fd);
		l->fd = -1;
		l->set->open--;
	}
	l->err_paused = false;
	if (l->err_timer)
		evtimer_del(l->err_timer);
	l->state = LISTENER_CLOSED;
}

/* ---- the set, and descriptor shortage ------------------------------- */

static void foreach_update(struct listener_set *set)
{
	struct listener_watch *w;
	struct listener *l;

	TAILQ_FOREACH(l, &set->all, all)
		listener_update(l);
	LIST_FOREACH(w, &set->watches, entry)
		w->fn(w->arg, set->fd_paused);
}

static void fd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener_set *set = arg;

	set->fd_paused = false;
	foreach_update(set);
}

void listener_set_shortage(struct listener_set *set, int err)
{
	struct timeval now, tv;

	set->fd_failures++;
	event_base_gettimeofday_cached(set->base, &now);
	if (now.tv_sec - set->fd_reported.tv_sec >= 1) {
		log_warnx("out of file descriptors (%s; limit %ld): accepting "
			  "paused; %llu shortages since the last report, %llu "
			  "connections live", strerror(err), set->fd_limit,
			  (unsigned long long)set->fd_failures,
			  (unsigned long long)relay_count(set->relays));
		set->fd_failures = 0;
		/* a shortage that outlived a report: back off further */
		set->fd_pause_ms = set->fd_reported.tv_sec &&
				   now.tv_sec - set->fd_reported.tv_sec < 3 ?
				   FD_PAUSE_MAX_MS : FD_PAUSE_MIN_MS;
		set->fd_reported = now;
	}
	if (set->fd_paused)
		return;
	set->fd_paused = true;
	foreach_update(set);
	ms_to_tv(set->fd_pause_ms ? set->fd_pause_ms : FD_PAUSE_MIN_MS, &tv);
	evtimer_add(set->fd_timer, &tv);
}

static void relay_shortage(void *arg, int err)
{
	listener_set_shortage(arg, err);
}

struct listener_set *listener_set_new(struct event_base *base,
				      long fd_limit, unsigned reserve)
{
	struct listener_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->base = base;
	set->fd_limit = fd_limit;
	set->reserve = reserve;
	TAILQ_INIT(&set->all);
	TAILQ_INIT(&set->svcs);
	TAILQ_INIT(&set->addrs);
	LIST_INIT(&set->watches);
	TAILQ_INIT(&set->fair_held);
	set->fd_timer = evtimer_new(base, fd_timer_cb, set);
	set->trim = evtimer_new(base, trim_cb, set);
	set->relays = relay_set_new(base, relay_shortage, set);
	set->dgrams = dgram_set_new(base);
	if (!set->fd_timer || !set->trim || !set->relays || !set->dgrams) {
		listener_set_free(set);
		return NULL;
	}
	return set;
}

void listener_set_free(struct listener_set *set)
{
	if (!set)
		return;
	/* connections first: they hold their listeners */
	dgram_set_free(set->dgrams);
	relay_set_free(set->relays);
	if (set->fd_timer)
		event_free(set->fd_timer);
	if (set->trim)
		event_free(set->trim);
	free(set);
}

struct dgram_set *listener_set_dgrams(struct listener_set *set)
{
	return set->dgrams;
}

struct relay_set *listener_set_relays(struct listener_set *set)
{
	return set->relays;
}

struct listener_watch *listener_set_watch(struct listener_set *set,
					  void (*fn)(void *arg, bool paused),
					  void *arg)
{
	struct listener_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->set = set;
	w->fn = fn;
	w->arg = arg;
	LIST_INSERT_HEAD(&set->watches, w, entry);
	if (set->fd_paused)
		fn(arg, true);
	return w;
}

void listener_watch_free(struct listener_watch *w)
{
	if (!w)
		return;
	LIST_REMOVE(w, entry);
	free(w);
}

bool listener_set_short(const struct listener_set *set)
{
	return set->fd_paused;
}

bool listener_set_fd_take(struct listener_set *set, unsigned n, bool reserve)
{
	if (!reserve &&
	    fds_in_use(set) + (long)n + set->reserve > set->fd_limit) {
		listener_set_shortage(set, EMFILE);
		return false;
	}
	set->others += n;
	return true;
}

void listener_set_fd_put(struct listener_set *set, unsigned n)
{
	set->others -= n < set->others ? n : set->others;
}

unsigned listener_set_open_count(const struct listener_set *set)
{
	return set->open;
}

uint64_t listener_set_conn_count(const struct listener_set *set)
{
	return relay_count(set->relays) + dgram_count(set->dgrams);
}
