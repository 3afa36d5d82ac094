/* SPDX-License-Identifier: MIT */
/* dgram: datagram services, relayed per flow.
 *
 * Theory of operation
 *
 * A port's socket is bound to the listen address in its namespace (made
 * there by the privileged helper, as a listening TCP socket is).  Each
 * datagram read from it comes from a client address and port; the flow
 * of that (port, client) is looked up in one hash table of the set (a
 * seeded hash: a tenant picks its source ports and addresses, not where
 * they land).  A datagram without a flow asks the port's owner whether a
 * flow may start (the listener: descriptors, fair share, limits); if the
 * namespace is at a limit of live flows, the port's least recently used
 * flow (the one whose client has been quiet longest, not one with a
 * query just sent) ends and the new one takes its place (a tenant that
 * sprays source ports recycles its own flows, never another
 * namespace's); otherwise the datagram is dropped and counted.  A new
 * flow gets a UDP socket on the host, connected to a server the upstream
 * set picks (bound to the namespace's veth address
 * with source: namespace): connected, so the kernel gives it only that
 * server's datagrams and reports the server's ICMP errors on it, which
 * end the flow (ECONNREFUSED: port unreachable).  A unix datagram server
 * answers to the flow socket's abstract address.
 *
 * Datagrams go whole: one read, one send, never split or merged; a send
 * that would block drops the datagram (UDP promises no delivery; queueing
 * would only add latency to a protocol that retries) and counts it.
 * Reads are level-triggered and at most DGRAM_QUANTUM per port or flow a
 * loop turn.
 *
 * Timers: one per flow, armed for the idle timeout from the flow's start
 * and, when it fires, armed again for what is left since the last
 * datagram (a datagram only stores the loop's cached time: no timer
 * call per datagram).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "config/config.h"
#include "engine/dgram.h"
#include "engine/log.h"
#include "engine/upstream.h"

#define TAB_MIN		64

/* A client's address as read, ports included; compared byte for byte
 * over the fields that name it (not IPv6's flow label). */
struct peer {
	socklen_t len;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
};

struct dgram_flow {
	struct dgram_flow *hnext;		/* in set->tab */
	TAILQ_ENTRY(dgram_flow) link;		/* in its port, the one its
						 * client used least lately
						 * first */
	struct dgram_port *port;
	struct upstream_srv *srv;		/* NULL without an upstream set */
	const struct config_sockaddr *up;	/* srv's address, or the
						 * service's first */
	int fd;
	bool answered;				/* a datagram came back */
	struct event ev;			/* fd readable */
	struct event timer;
	struct timeval last;			/* last datagram either way */
	uint64_t hash;
	struct peer peer;
};

TAILQ_HEAD(flow_list, dgram_flow);

struct dgram_port {
	TAILQ_ENTRY(dgram_port) entry;
	struct dgram_set *set;
	struct relay_origin *o;
	int fd;
	bool enabled;
	bool closing;			/* its flows are ending: stays off */
	struct event ev;
	dgram_admit_fn admit;
	void *arg;
	struct flow_list flows;
};

struct dgram_set {
	struct event_base *base;
	struct upstream_set *ups;
	TAILQ_HEAD(, dgram_port) ports;
	struct dgram_flow **tab;	/* tab_size buckets, a power of 2 */
	size_t tab_size;
	uint64_t n;			/* live flows */
	uint64_t seed;
};

/* One datagram at a time: the loop is single-threaded. */
static uint8_t buf[65536];

/* ---- the table ------------------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 29);
}

static uint64_t peer_hash(const struct dgram_set *set,
			  const struct dgram_port *p, const struct peer *a)
{
	uint64_t h = mix(set->seed, (uint64_t)(uintptr_t)p);

	if (a->u.sa.sa_family == AF_INET) {
		h = mix(h, a->u.in.sin_addr.s_addr);
		h = mix(h, a->u.in.sin_port);
	} else {
		uint64_t w[2];

		memcpy(w, &a->u.in6.sin6_addr, sizeof(w));
		h = mix(mix(h, w[0]), w[1]);
		h = mix(h, (uint64_t)a->u.in6.sin6_port << 32 |
			   a->u.in6.sin6_scope_id);
	}
	return h;
}

static bool peer_eq(const struct peer *a, const struct peer *b)
{
	if (a->u.sa.sa_family != b->u.sa.sa_family)
		return false;
	if (a->u.sa.sa_family == AF_INET)
		return a->u.in.sin_addr.s_addr == b->u.in.sin_addr.s_addr &&
		       a->u.in.sin_port == b->u.in.sin_port;
	return !memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) &&
	       a->u.in6.sin6_port == b->u.in6.sin6_port &&
	       a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id;
}

static struct dgram_flow *find(const struct dgram_set *set,
			       const struct dgram_port *p,
			       const struct peer *a, uint64_t h)
{
	struct dgram_flow *f;

	for (f = set->tab[h & (set->tab_size - 1)]; f; f = f->hnext)
		if (f->hash == h && f->port == p && peer_eq(&f->peer, a))
			return f;
	return NULL;
}

/* Twice the buckets once there are more flows than buckets; without the
 * memory, longer chains. */
static void grow(struct dgram_set *set)
{
	size_t size = set->tab_size * 2;
	struct dgram_flow **tab = calloc(size, sizeof(*tab));

	if (!tab)
		return;
	for (size_t i = 0; i < set->tab_size; i++) {
		struct dgram_flow *f, *next;

		for (f = set->tab[i]; f; f = next) {
			next = f->hnext;
			f->hnext = tab[f->hash & (size - 1)];
			tab[f->hash & (size - 1)] = f;
		}
	}
	free(set->tab);
	set->tab = tab;
	set->tab_size = size;
}

static void unlink_flow(struct dgram_set *set, struct dgram_flow *f)
{
	struct dgram_flow **pp = &set->tab[f->hash & (set->tab_size - 1)];

	while (*pp != f)
		pp = &(*pp)->hnext;
	*pp = f->hnext;
}

/* ---- flows ---------------------------------------------------------- */

static void flow_end(struct dgram_flow *f, enum relay_close why)
{
	struct dgram_port *p = f->port;
	struct relay_origin *o = p->o;

	event_del(&f->ev);
	evtimer_del(&f->timer);
	close(f->fd);
	unlink_flow(p->set, f);
	TAILQ_REMOVE(&p->flows, f, link);
	p->set->n--;
	if (f->srv)
		upstream_srv_done(f->srv);
	o->cnt->active--;
	o->cnt->closed[why]++;
	free(f);
	o->closed(o, why);
}

/* The server answered with an error (ERR, an errno: an ICMP error). */
static void flow_failed(struct dgram_flow *f, int err)
{
	struct dgram_port *p = f->port;
	char why[160];

	if (f->srv && !f->answered) {
		snprintf(why, sizeof(why), "a datagram flow: %s",
			 strerror(err));
		upstream_srv_result(f->srv, false, why);
	}
	relay_log_upstream(p->set->base, p->o, f->up,
			   f->answered ? "a datagram flow ended" :
			   "a datagram flow had no answer", err);
	flow_end(f, f->answered ? RELAY_CLOSE_UPSTREAM_RESET :
				  RELAY_CLOSE_CONNECT_FAILED);
}

/* What is left of F's idle timeout at NOW, in ms (its service's timeout
 * as it is now: a reload may have changed it). */
static uint64_t idle_left(const struct dgram_flow *f,
			  const struct timeval *now)
{
	uint64_t idle = f->port->o->svc->idle_timeout_ms, used;
	struct timeval d;

	timersub(now, &f->last, &d);
	used = d.tv_sec < 0 ? 0 :
	       (uint64_t)d.tv_sec * 1000 + (uint64_t)d.tv_usec / 1000;
	return used < idle ? idle - used : 0;
}

static void flow_arm(struct dgram_flow *f, const struct timeval *now)
{
	uint64_t left = idle_left(f, now);
	struct timeval tv;

	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	evtimer_add(&f->timer, &tv);
}

static void flow_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dgram_flow *f = arg;
	struct timeval now;

	(void)fd;
	(void)what;
	event_base_gettimeofday_cached(f->port->set->base, &now);
	if (!idle_left(f, &now))
		flow_end(f, RELAY_CLOSE_IDLE_TIMEOUT);
	else
		flow_arm(f, &now);
}

/* The server's datagrams, each back to the client from the port. */
static void flow_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dgram_flow *f = arg;
	struct dgram_port *p = f->port;
	struct relay_counters *c = p->o->cnt;

	(void)what;
	for (unsigned n = 0; n < DGRAM_QUANTUM; n++) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			flow_failed(f, errno);
			return;
		}
		event_base_gettimeofday_cached(p->set->base, &f->last);
		if (!f->answered) {
			f->answered = true;
			if (f->srv)
				upstream_srv_result(f->srv, true, NULL);
		}
		if (sendto(p->fd, buf, (size_t)r, MSG_DONTWAIT | MSG_NOSIGNAL,
			   &f->peer.u.sa, f->peer.len) < 0) {
			c->drops[RELAY_DROP_CLIENT_SEND]++;
			continue;
		}
		c->datagrams_out++;
		c->bytes_out += (uint64_t)r;
	}
}

/* A flow may not start: undo what admitting it counted. */
static struct dgram_flow *refuse(struct dgram_port *p, enum relay_drop drop,
				 enum relay_close why)
{
	p->o->cnt->drops[drop]++;
	p->o->cnt->active--;
	p->o->closed(p->o, why);
	return NULL;
}

/* May a flow of client A start on P?  Asked with the flow already among
 * the origin's live ones, as a connection is when its listener counts it
 * (a limit of N holds at the Nth); not admitted, it is taken out again. */
static enum dgram_admit ask(struct dgram_port *p, const struct peer *a,
			    bool in_place, struct relay_ident *id,
			    enum relay_drop *drop)
{
	enum dgram_admit r;

	memset(id, 0, sizeof(*id));
	*drop = RELAY_DROP_LIMIT;
	p->o->cnt->active++;
	r = p->admit(p->arg, &a->u.sa, in_place, id, drop);
	if (r != DGRAM_ADMIT_OK)
		p->o->cnt->active--;
	return r;
}

/* A flow for the client A (hash H) of P, or NULL: the datagram is
 * dropped (counted). */
static struct dgram_flow *flow_new(struct dgram_port *p, const struct peer *a,
				   uint64_t h)
{
	struct dgram_set *set = p->set;
	struct relay_origin *o = p->o;
	const struct config_sockaddr *up = &o->svc->upstream;
	struct upstream_srv *srv = NULL;
	struct relay_ident id;
	enum relay_drop drop;
	enum dgram_admit r;
	struct dgram_flow *f;
	bool connected;
	int fd, err;

	r = ask(p, a, false, &id, &drop);
	if (r == DGRAM_ADMIT_FULL && !TAILQ_EMPTY(&p->flows)) {
		/* this port's least recently used makes room: the new
		 * flow takes its place, however far above a limit the
		 * namespace is */
		flow_end(TAILQ_FIRST(&p->flows), RELAY_CLOSE_NO_RESOURCES);
		r = ask(p, a, true, &id, &drop);
	}
	if (r != DGRAM_ADMIT_OK) {
		o->cnt->drops[r == DGRAM_ADMIT_FULL ? RELAY_DROP_LIMIT :
			      drop]++;
		return NULL;
	}
	if (set->ups) {
		srv = upstream_pick(set->ups, o->svc->name, NULL);
		if (!srv) {
			relay_log_upstream(set->base, o, NULL, "no server in "
					   "service: datagram dropped", 0);
			return refuse(p, RELAY_DROP_NO_UPSTREAM,
				      RELAY_CLOSE_NO_UPSTREAM);
		}
		up = upstream_srv_addr(srv);
	}
	err = relay_upstream_open(up, SOCK_DGRAM, &id, &fd, &connected);
	if (err < 0) {
		bool ours = err == -EMFILE || err == -ENFILE ||
			    err == -ENOBUFS || err == -ENOMEM ||
			    err == -EADDRNOTAVAIL || err == -EADDRINUSE ||
			    err == -EAFNOSUPPORT;

		if (srv && !ours) {
			char why[160];

			snprintf(why, sizeof(why), "a datagram flow: "
				 "connect: %s", strerror(-err));
			upstream_srv_result(srv, false, why);
		}
		if (srv)
			upstream_srv_done(srv);
		relay_log_upstream(set->base, o, up, ours ? "socket" :
				   "connect", -err);
		return refuse(p, ours ? RELAY_DROP_NO_RESOURCES :
				  RELAY_DROP_NO_UPSTREAM,
			      ours ? RELAY_CLOSE_NO_RESOURCES :
				     RELAY_CLOSE_CONNECT_FAILED);
	}
	if (!(f = calloc(1, sizeof(*f)))) {
		close(fd);
		if (srv)
			upstream_srv_done(srv);
		return refuse(p, RELAY_DROP_NO_RESOURCES,
			      RELAY_CLOSE_NO_RESOURCES);
	}
	f->port = p;
	f->srv = srv;
	f->up = up;
	f->fd = fd;
	f->hash = h;
	f->peer = *a;
	event_base_gettimeofday_cached(set->base, &f->last);
	if (set->n >= set->tab_size)
		grow(set);
	f->hnext = set->tab[h & (set->tab_size - 1)];
	set->tab[h & (set->tab_size - 1)] = f;
	TAILQ_INSERT_TAIL(&p->flows, f, link);
	set->n++;
	o->cnt->accepted++;	/* active: counted by ask() */
	event_assign(&f->ev, set->base, fd, EV_READ | EV_PERSIST, flow_cb, f);
	evtimer_assign(&f->timer, set->base, flow_timer_cb, f);
	event_add(&f->ev, NULL);
	flow_arm(f, &f->last);
	return f;
}

/* ---- ports ---------------------------------------------------------- */

/* The clients' datagrams, each to its flow's server. */
static void port_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dgram_port *p = arg;
	struct dgram_set *set = p->set;
	struct relay_counters *c = p->o->cnt;

	(void)what;
	for (unsigned n = 0; n < DGRAM_QUANTUM && p->enabled; n++) {
		struct dgram_flow *f;
		struct peer a;
		socklen_t len = sizeof(a.u);
		ssize_t r;
		uint64_t h;

		memset(&a, 0, sizeof(a));
		r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, &a.u.sa, &len);
		if (r < 0)
			return;		/* EAGAIN: drained; else next turn */
		if (a.u.sa.sa_family != AF_INET &&
		    a.u.sa.sa_family != AF_INET6)
			continue;
		a.len = len;
		h = peer_hash(set, p, &a);
		if ((f = find(set, p, &a, h))) {
			/* used: last in line to make room */
			if (f != TAILQ_LAST(&p->flows, flow_list)) {
				TAILQ_REMOVE(&p->flows, f, link);
				TAILQ_INSERT_TAIL(&p->flows, f, link);
			}
		} else if (!(f = flow_new(p, &a, h))) {
			continue;
		}
		if (send(f->fd, buf, (size_t)r, MSG_DONTWAIT | MSG_NOSIGNAL) <
		    0) {
			int err = errno;

			c->drops[RELAY_DROP_UPSTREAM_SEND]++;
			if (err != EAGAIN && err != ENOBUFS && err != EINTR)
				flow_failed(f, err);	/* an ICMP error */
			continue;
		}
		event_base_gettimeofday_cached(set->base, &f->last);
		c->datagrams_in++;
		c->bytes_in += (uint64_t)r;
	}
}

struct dgram_port *dgram_port_new(struct dgram_set *set,
				  struct relay_origin *o, int fd,
				  dgram_admit_fn admit, void *arg)
{
	struct dgram_port *p = calloc(1, sizeof(*p));

	if (!p) {
		close(fd);
		return NULL;
	}
	p->set = set;
	p->o = o;
	p->fd = fd;
	p->admit = admit;
	p->arg = arg;
	TAILQ_INIT(&p->flows);
	event_assign(&p->ev, set->base, fd, EV_READ | EV_PERSIST, port_cb, p);
	TAILQ_INSERT_TAIL(&set->ports, p, entry);
	return p;
}

void dgram_port_enable(struct dgram_port *p, bool on)
{
	if (on == p->enabled || p->closing)
		return;
	p->enabled = on;
	if (on)
		event_add(&p->ev, NULL);
	else
		event_del(&p->ev);
}

void dgram_port_free(struct dgram_port *p)
{
	struct dgram_flow *f;

	if (!p)
		return;
	dgram_port_enable(p, false);
	p->closing = true;
	while ((f = TAILQ_FIRST(&p->flows)))
		flow_end(f, RELAY_CLOSE_SHUTDOWN);
	close(p->fd);
	TAILQ_REMOVE(&p->set->ports, p, entry);
	free(p);
}

/* ---- the set -------------------------------------------------------- */

struct dgram_set *dgram_set_new(struct event_base *base)
{
	struct dgram_set *set = calloc(1, sizeof(*set));

	if (!set || !(set->tab = calloc(TAB_MIN, sizeof(*set->tab)))) {
		free(set);
		return NULL;
	}
	set->base = base;
	set->tab_size = TAB_MIN;
	TAILQ_INIT(&set->ports);
	if (getrandom(&set->seed, sizeof(set->seed), GRND_NONBLOCK) !=
	    sizeof(set->seed))
		set->seed = (uint64_t)(uintptr_t)set ^ (uint64_t)getpid();
	return set;
}

void dgram_set_free(struct dgram_set *set)
{
	struct dgram_port *p;

	if (!set)
		return;
	while ((p = TAILQ_FIRST(&set->ports)))
		dgram_port_free(p);
	free(set->tab);
	free(set);
}

void dgram_set_upstreams(struct dgram_set *set, struct upstream_set *ups)
{
	set->ups = ups;
}

uint64_t dgram_count(const struct dgram_set *set)
{
	return set->n;
}

void dgram_set_retime(struct dgram_set *set)
{
	struct dgram_port *p;
	struct dgram_flow *f;
	struct timeval now;

	event_base_gettimeofday_cached(set->base, &now);
	TAILQ_FOREACH(p, &set->ports, entry)
		TAILQ_FOREACH(f, &p->flows, link) {
			evtimer_del(&f->timer);
			flow_arm(f, &now);
		}
}
