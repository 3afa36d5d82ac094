/* SPDX-License-Identifier: MIT */
/* relay_set: starting a connection (which server, the upstream connect,
 * what a failure costs the client, the one retry on another server), the
 * set of live connections, its pipe pool's size and the figures it keeps.
 * The state machine of a connection is relay.c's; the servers' health and
 * the choice among them are upstream.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "config/config.h"
#include "engine/log.h"
#include "engine/relay.h"
#include "engine/relay_int.h"
#include "engine/upstream.h"

/* A missing unix socket is ENOENT: say what is missing. */
static const char *upstream_strerror(const struct config_sockaddr *up,
				     int err)
{
	if (up->sa.ss_family == AF_UNIX && err == ENOENT)
		return "the socket does not exist";
	if (up->sa.ss_family == AF_UNIX && err == ECONNREFUSED)
		return "nothing listens on the socket";
	return strerror(err);
}

void relay_log_upstream(struct event_base *base, struct relay_origin *o,
			const struct config_sockaddr *server,
			const char *what, int err)
{
	struct relay_counters *c = o->cnt;
	struct timeval now;

	c->upstream_unlogged++;
	event_base_gettimeofday_cached(base, &now);
	if (c->upstream_logged.tv_sec &&
	    now.tv_sec - c->upstream_logged.tv_sec < 10)
		return;
	log_warnx("ns %s: %s: upstream %s: %s%s%s (%llu failures since last "
		  "report)", o->ns_name, o->svc->name,
		  server ? server->text : "(every server)", what,
		  err ? ": " : "", err && server ?
		  upstream_strerror(server, err) : err ? strerror(err) : "",
		  (unsigned long long)c->upstream_unlogged);
	c->upstream_logged = now;
	c->upstream_unlogged = 0;
}

static void peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "?");
	}
}

static bool shortage(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	       err == ENOMEM;
}

/* No connection could be set up: reset the client, count, report
 * (SERVER: the one that failed, for CONNECT_FAILED). */
static int start_failed(struct relay_set *set, struct relay_origin *o,
			int fd, enum relay_close why,
			const struct config_sockaddr *server, const char *what,
			int err)
{
	if (fd >= 0) {
		relay_reset_fd(fd);
		close(fd);
	}
	o->cnt->closed[why]++;
	if (why == RELAY_CLOSE_CONNECT_FAILED)
		relay_log_upstream(set->base, o, server, what, err);
	else if (why == RELAY_CLOSE_NO_UPSTREAM)
		relay_log_upstream(set->base, o, NULL, "no server in service: "
				      "client reset", 0);
	else if (shortage(err))
		set->shortage(set->arg, err);
	else
		log_warnx("ns %s: %s: cannot relay a connection: %s: %s",
			  o->ns_name, o->svc->name, what, strerror(err));
	return -err;
}

static bool is_inet(int family)
{
	return family == AF_INET || family == AF_INET6;
}

/* Bind FD, a socket for a server of FAMILY, to ID's address of that
 * family, its port left to connect() (IP_BIND_ADDRESS_NO_PORT: the port
 * is then chosen for the whole four-tuple, so one source address has the
 * ephemeral range once per server address and port).  0 or -errno. */
static int bind_source(int fd, int family, const struct relay_ident *id)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_addr = id->src4;
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_addr = id->src6;
		len = sizeof(*in6);
	}
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		       sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0)
		return -errno;
	return 0;
}

/* No port or address of our own to connect from: ours, not the
 * server's. */
static bool source_err(int err)
{
	return err == EADDRNOTAVAIL || err == EADDRINUSE;
}

/* A non-blocking socket connecting to UP (bound as ID says, if ID and a
 * TCP server): 0 with *FD and *CONNECTED (a unix socket connects at
 * once), or -errno of socket(), bind() or connect(). */
int relay_upstream_open(const struct config_sockaddr *up, int type,
			const struct relay_ident *id, int *fd, bool *connected)
{
	int ufd, err;

	ufd = socket(up->sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0)
		return -errno;
	if (is_inet(up->sa.ss_family)) {
		/* what arrives leaves at once: no Nagle wait of our own on
		 * top of the client's (the client's socket has it from its
		 * listener) */
		int one = 1;

		if (type == SOCK_STREAM)
			setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		if (id && id->bind &&
		    (err = bind_source(ufd, up->sa.ss_family, id)) < 0) {
			close(ufd);
			return err;
		}
	} else if (type == SOCK_DGRAM) {
		/* a unix datagram server answers to an address: an
		 * abstract one of the kernel's choice (autobind) */
		sa_family_t af = AF_UNIX;

		if (bind(ufd, (const struct sockaddr *)&af, sizeof(af)) < 0) {
			err = errno;
			close(ufd);
			return -err;
		}
	}
	/* a unix socket connects (or fails) at once, and its errno is what
	 * the admin needs to read */
	*connected = false;
	if (connect(ufd, (const struct sockaddr *)&up->sa, up->len) == 0) {
		*connected = true;
	} else if (errno != EINPROGRESS && errno != EAGAIN) {
		err = errno;
		close(ufd);
		return -err;
	}
	*fd = ufd;
	return 0;
}

void relay_set_upstreams(struct relay_set *set, struct upstream_set *ups)
{
	set->ups = ups;
}

int relay_start(struct relay_set *set, struct relay_origin *o, int fd,
		const struct sockaddr *peer)
{
	return relay_start_id(set, o, fd, peer, NULL);
}

/* Queue R's PROXY header for its upstream, first.  0 or -ENOMEM. */
static int queue_hdr(struct relay *r)
{
	struct side *x = &r->side[UPSTREAM];

	if (!r->hdr)
		return 0;
	if (!x->out && !(x->out = evbuffer_new()))
		return -ENOMEM;
	return evbuffer_prepend(x->out, r->hdr, r->hdr_len) < 0 ? -ENOMEM : 0;
}

int relay_start_id(struct relay_set *set, struct relay_origin *o, int fd,
		   const struct sockaddr *peer, const struct relay_ident *id)
{
	const void *hdr = id ? id->hdr : NULL;
	size_t hdr_len = id ? id->hdr_len : 0;
	const struct config_sockaddr *up = &o->svc->upstream;
	struct upstream_srv *srv = NULL, *tried = NULL;
	struct relay *r;
	int ufd = -1, err = 0, family;
	bool connected = false;

	/* a server that refuses at once (a unix socket) is left for the
	 * next, once, as a connect that fails later is (relay_failover) */
	for (;;) {
		if (set->ups) {
			srv = upstream_pick(set->ups, o->svc->name, tried);
			if (!srv && tried)
				return start_failed(set, o, fd,
						    RELAY_CLOSE_CONNECT_FAILED,
						    up, "connect", -err);
			if (!srv)
				return start_failed(set, o, fd,
						    RELAY_CLOSE_NO_UPSTREAM,
						    NULL, NULL, 0);
			up = upstream_srv_addr(srv);
		}
		err = relay_upstream_open(up, SOCK_STREAM, id, &ufd,
					  &connected);
		if (!err)
			break;
		if (shortage(-err) || err == -EAFNOSUPPORT ||
		    (id && id->bind && source_err(-err))) {
			if (srv)
				upstream_srv_done(srv);
			return start_failed(set, o, fd,
					    RELAY_CLOSE_NO_RESOURCES, up,
					    source_err(-err) ? "bind: the "
					    "namespace's address" : "socket",
					    -err);
		}
		if (srv) {
			char why[128];

			snprintf(why, sizeof(why), "a connection: connect: %s",
				 upstream_strerror(up, -err));
			upstream_srv_result(srv, false, why);
			upstream_srv_done(srv);
		}
		if (!srv || tried)
			return start_failed(set, o, fd,
					    RELAY_CLOSE_CONNECT_FAILED, up,
					    "connect", -err);
		relay_log_upstream(set->base, o, up, "connect", -err);
		tried = srv;	/* still in its service: a valid pointer */
	}
	r = calloc(1, sizeof(*r));
	if (r && hdr && hdr_len) {
		r->hdr = malloc(hdr_len);
		if (r->hdr) {
			memcpy(r->hdr, hdr, hdr_len);
			r->hdr_len = hdr_len;
		}
		if (!r->hdr || queue_hdr(r) < 0) {
			if (r->side[UPSTREAM].out)
				evbuffer_free(r->side[UPSTREAM].out);
			free(r->hdr);
			free(r);
			r = NULL;
		}
	}
	if (!r) {
		close(ufd);
		if (srv)
			upstream_srv_done(srv);
		return start_failed(set, o, fd, RELAY_CLOSE_NO_RESOURCES, up,
				    "calloc", ENOMEM);
	}
	if (peer) {
		family = peer->sa_family;
	} else {
		socklen_t len = sizeof(family);

		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0)
			family = AF_UNSPEC;
	}
	r->tcp = is_inet(family) && is_inet(up->sa.ss_family);
	r->set = set;
	r->o = o;
	r->srv = srv;
	if (id && id->bind) {
		r->bind = true;
		r->src4 = id->src4;
		r->src6 = id->src6;
	}
	r->retried = tried != NULL;
	r->id = ++set->next_id;
	r->side[CLIENT].fd = fd;
	r->side[UPSTREAM].fd = ufd;
	for (int s = CLIENT; s <= UPSTREAM; s++)
		event_assign(&r->side[s].ev, set->base, -1, EV_PERSIST,
			     relay_side_cb, r);
	o->cnt->accepted++;
	o->cnt->active++;
	TAILQ_INSERT_TAIL(&set->relays, r, entry);
	set->n++;
	event_base_gettimeofday_cached(set->base, &r->last);
	r->connected = connected;
	r->side[CLIENT].wready = true;		/* a new socket has room */
	r->side[UPSTREAM].wready = connected;
	/* the client's event carries the timer: always added */
	r->side[CLIENT].mask = -1;
	relay_side_sync(r, CLIENT);
	relay_side_sync(r, UPSTREAM);
	if (log_verbose()) {
		char from[INET6_ADDRSTRLEN + 8] = "?";

		if (peer)
			peer_text(peer, from, sizeof(from));
		log_debug("ns %s: %s: connection %llu from %s to %s%s",
			  o->ns_name, o->svc->name, (unsigned long long)r->id,
			  from, up->text, connected ? " (connected)" : "");
	}
	return 0;
}

/* Failover, for a connection whose server failed before its first byte.
 * Safe only while nothing the client sent has reached the server: before
 * the connect completed, whatever the client sent still waits in the
 * upstream side's buffer and goes to the next server instead; after it,
 * only if the client has sent nothing (MySQL, SMTP and IMAP servers speak
 * first, so their clients usually wait).  Once, so that a client never
 * waits for more than two connect timeouts. */
int relay_failover(struct relay *r, const char *what, int err)
{
	struct relay_set *set = r->set;
	struct side *x = &r->side[UPSTREAM];
	struct upstream_srv *next;
	const struct config_sockaddr *up;
	struct timeval tv;
	char why[128];
	bool connected, connected_before;
	int ufd, e;

	/* a server that ends after the client ended answered it: no
	 * failure (a client may connect and leave without waiting) */
	if (r->connected && r->side[CLIENT].eof)
		return 0;
	relay_log_upstream(set->base, r->o, r->srv ? upstream_srv_addr(r->srv) :
			      &r->o->svc->upstream, what, err);
	if (!r->srv)
		return 0;
	snprintf(why, sizeof(why), "a connection: %s%s%s", what,
		 err ? ": " : "", err ? strerror(err) : "");
	upstream_srv_result(r->srv, false, why);
	if (r->retried || (r->connected && r->bytes[CLIENT]) || x->fd < 0 ||
	    x->pipe)
		return 0;
	next = upstream_pick(set->ups, r->o->svc->name, r->srv);
	if (!next)
		return 0;
	r->retried = true;
	connected_before = r->connected;
	event_del(&x->ev);
	relay_reset_fd(x->fd);
	close(x->fd);
	x->fd = -1;
	upstream_srv_done(r->srv);
	r->srv = next;
	up = upstream_srv_addr(next);
	{
		struct relay_ident id = { .bind = r->bind, .src4 = r->src4,
					  .src6 = r->src6 };

		e = relay_upstream_open(up, SOCK_STREAM, &id, &ufd,
					&connected);
	}
	if (e) {
		if (!shortage(-e) && !(r->bind && source_err(-e))) {
			snprintf(why, sizeof(why), "a connection: connect: %s",
				 upstream_strerror(up, -e));
			upstream_srv_result(next, false, why);
		}
		relay_log_upstream(set->base, r->o, up, "connect", -e);
		relay_close(r, shortage(-e) || (r->bind && source_err(-e)) ?
			    RELAY_CLOSE_NO_RESOURCES :
			    RELAY_CLOSE_CONNECT_FAILED, true);
		return -1;
	}
	log_debug("ns %s: %s: connection %llu: tried again on %s",
		  r->o->ns_name, r->o->svc->name, (unsigned long long)r->id,
		  up->text);
	/* before the connect, the header still leads what waits; after it,
	 * the client has sent nothing and what waits is the header's rest */
	if (r->hdr && connected_before) {
		if (x->out)
			evbuffer_drain(x->out, evbuffer_get_length(x->out));
		if (queue_hdr(r) < 0) {
			close(ufd);
			relay_close(r, RELAY_CLOSE_NO_RESOURCES, true);
			return -1;
		}
	}
	x->fd = ufd;
	x->eof = x->shut = x->paused = x->rready = x->rdhup = x->bulk = false;
	x->wready = connected;
	x->mask = -1;		/* registered anew below */
	r->connected = connected;
	r->tcp = r->tcp && is_inet(up->sa.ss_family);
	/* the new server gets a connect timeout of its own */
	event_base_gettimeofday_cached(set->base, &r->last);
	relay_side_sync(r, UPSTREAM);
	event_add(&r->side[CLIENT].ev, relay_timer_tv(r, &tv));
	return 1;
}

uint64_t relay_count(const struct relay_set *set)
{
	return set->n;
}

unsigned relay_pipe_count(const struct relay_set *set)
{
	return set->pipes;
}

void relay_get_stats(const struct relay_set *set, struct relay_stats *st)
{
	*st = set->stats;
	st->pipes = set->pipes;
	st->pipes_free = set->n_free;
	st->max_pipes = set->max_pipes;
	st->pipe_bytes = set->pipe_bytes;
	st->pipe_budget = set->pipe_budget;
}

void relay_set_pipe_budget(struct relay_set *set, size_t bytes)
{
	set->pipe_budget = bytes;
}

/* How many pipes: NSRELAY_COPY_ONLY=1 none, NSRELAY_PIPES=N that many,
 * else RELAY_MAX_PIPES, within 1/32 of the descriptor limit (two
 * descriptors a pipe: at most a sixteenth of the limit). */
static unsigned pipes_allowed(void)
{
	const char *e = getenv("NSRELAY_COPY_ONLY");
	struct rlimit rl;
	unsigned long max = RELAY_MAX_PIPES;

	if (e && *e && strcmp(e, "0"))
		return 0;
	e = getenv("NSRELAY_PIPES");
	if (e && *e) {
		char *end;
		unsigned long v = strtoul(e, &end, 10);

		if (!*end && v <= 65536)
			return (unsigned)v;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 32 < max)
		max = (unsigned long)(rl.rlim_cur / 32);
	return (unsigned)max;
}

/* How much pipe capacity: three quarters of what the kernel lets an
 * unprivileged user hold (fs.pipe-user-pages-soft, 16384 pages by default:
 * 64 MiB, of which 48 for this daemon's pipes); unlimited when it is 0. */
static size_t pipe_budget(void)
{
	unsigned long pages = 16384;
	long psz = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/sys/fs/pipe-user-pages-soft", "re");

	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 16384;
		fclose(f);
	}
	if (pages == 0)
		return SIZE_MAX / 2;
	return pages / 4 * 3 * (size_t)(psz > 0 ? psz : 4096);
}

struct relay_set *relay_set_new(struct event_base *base,
				relay_shortage_fn shortage_cb, void *arg)
{
	struct relay_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->scratch = malloc(RELAY_READ_CHUNK);
	if (!set->scratch) {
		free(set);
		return NULL;
	}
	set->base = base;
	set->shortage = shortage_cb;
	set->arg = arg;
	set->max_pipes = pipes_allowed();
	set->pipe_budget = pipe_budget();
	TAILQ_INIT(&set->relays);
	return set;
}

void relay_set_retime(struct relay_set *set)
{
	struct relay *r;
	struct timeval tv;

	/* the client's event carries the timer, always added */
	TAILQ_FOREACH(r, &set->relays, entry)
		event_add(&r->side[CLIENT].ev, relay_timer_tv(r, &tv));
}

void relay_close_all(struct relay_set *set)
{
	struct relay *r;
	struct relay_pipe *p;

	while ((r = TAILQ_FIRST(&set->relays)))
		relay_close(r, RELAY_CLOSE_SHUTDOWN, false);
	while ((p = set->free_pipes)) {
		set->free_pipes = p->next;
		set->n_free--;
		relay_pipe_close(set, p);
	}
}

void relay_set_free(struct relay_set *set)
{
	if (!set)
		return;
	relay_close_all(set);
	free(set->scratch);
	free(set);
}
