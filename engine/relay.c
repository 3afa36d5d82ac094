/* SPDX-License-Identifier: MIT */
/* relay: the byte path between a client in a namespace and its upstream.
 *
 * Theory of operation
 *
 * A connection is one struct relay with two bufferevents, bev[CLIENT] and
 * bev[UPSTREAM].  The upstream connect starts the moment the client is
 * accepted; both sides read from the start, and what the client sends before
 * the upstream is connected waits in the upstream's output buffer, bounded
 * like any other.
 *
 * Backpressure: bytes read from side s are moved (not copied) to the output
 * buffer of the other side d; after libevent's own (small) read, the rest
 * of what the socket holds is read straight into that buffer.  When that output reaches RELAY_HIGH_WATER,
 * reading from s stops and d's write low watermark is set to half of it;
 * the write callback fired when d drains below it resumes reading from s.
 * So each direction holds at most RELAY_HIGH_WATER plus one read chunk.
 *
 * Half-close, one direction at a time: EOF from s sets eof[s] and stops
 * reading s.  Once d's output is empty (now, or when the write callback says
 * so), shutdown(d, SHUT_WR) passes the FIN on and sets shut[d].  The other
 * direction keeps flowing.  A direction is done when its source said EOF and
 * its destination was shut (or is gone); the relay is freed when both are.
 * relay_update() evaluates all of this after every event, so there is one
 * place where the state machine lives.
 *
 * Closing: relay_close() is the one way a connection ends, from any state.
 * A side that would lose bytes is reset (SO_LINGER {1, 0}) rather than sent
 * a FIN, so that a truncated stream never looks complete: a side with bytes
 * still buffered for it when a timeout or shutdown ends the connection, and
 * both sides when one side fails before its direction towards it finished
 * (a reset or error on s before s's EOF, or an error on s while the other
 * side still had bytes to send to it).  An error on s after its EOF and
 * after everything for s was delivered is a normal end of s.  A failed or
 * timed-out upstream connect resets the client.
 *
 * Timeouts: one timer per connection.  Before the upstream is connected it
 * is the connect timeout; then the idle timeout (no byte read either way),
 * or the shorter fin timeout once one direction has ended.  The timer is
 * not re-armed per byte: it fires, compares with the time of the last byte,
 * and re-arms for the remainder.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config/config.h"
#include "engine/log.h"
#include "engine/relay.h"

enum { CLIENT, UPSTREAM };

struct relay {
	TAILQ_ENTRY(relay) entry;
	struct relay_set *set;
	struct relay_origin *o;
	struct bufferevent *bev[2];	/* NULL once that side is gone */
	struct event *timer;
	struct timeval last;		/* last byte read, either side */
	uint64_t id;
	uint64_t bytes[2];		/* bytes read from each side */
	bool connected;			/* upstream connect completed */
	bool eof[2];			/* nothing more comes from side */
	bool shut[2];			/* SHUT_WR passed on to side */
};

TAILQ_HEAD(relay_list, relay);

struct relay_set {
	struct event_base *base;
	struct relay_list relays;
	uint64_t n;
	uint64_t next_id;		/* connection ids, for logs */
	relay_shortage_fn shortage;
	void *arg;
};

static const char *const close_names[RELAY_CLOSE_MAX] = {
	[RELAY_CLOSE_DONE] = "done",
	[RELAY_CLOSE_CLIENT_RESET] = "client-reset",
	[RELAY_CLOSE_UPSTREAM_RESET] = "upstream-reset",
	[RELAY_CLOSE_CONNECT_FAILED] = "connect-failed",
	[RELAY_CLOSE_CONNECT_TIMEOUT] = "connect-timeout",
	[RELAY_CLOSE_IDLE_TIMEOUT] = "idle-timeout",
	[RELAY_CLOSE_FIN_TIMEOUT] = "fin-timeout",
	[RELAY_CLOSE_NO_RESOURCES] = "no-resources",
	[RELAY_CLOSE_SHUTDOWN] = "shutdown",
};

const char *relay_close_name(enum relay_close why)
{
	return why < RELAY_CLOSE_MAX ? close_names[why] : "?";
}

static void ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void touch(struct relay *r)
{
	event_base_gettimeofday_cached(r->set->base, &r->last);
}

static void reset_fd(int fd)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
}

/* The one way a connection ends.  RESET: both sides lose bytes, reset
 * both; otherwise a side is reset only if bytes buffered for it are being
 * discarded, and gets a FIN else.  Frees R. */
static void relay_close(struct relay *r, enum relay_close why, bool reset)
{
	struct relay_origin *o = r->o;
	struct relay_set *set = r->set;

	log_debug("ns %s: %s: connection %llu closed (%s), %llu bytes in, "
		  "%llu bytes out", o->ns_name, o->svc->name,
		  (unsigned long long)r->id, relay_close_name(why),
		  (unsigned long long)r->bytes[CLIENT],
		  (unsigned long long)r->bytes[UPSTREAM]);
	for (int s = CLIENT; s <= UPSTREAM; s++) {
		if (!r->bev[s])
			continue;
		if (reset ||
		    evbuffer_get_length(bufferevent_get_output(r->bev[s])))
			reset_fd(bufferevent_getfd(r->bev[s]));
		bufferevent_free(r->bev[s]);
	}
	o->cnt.closed[why]++;
	o->cnt.active--;
	TAILQ_REMOVE(&set->relays, r, entry);
	set->n--;
	event_free(r->timer);
	free(r);
	if (o->closed)
		o->closed(o, why);
}

static void count(struct relay *r, int s, uint64_t n)
{
	if (s == CLIENT)
		r->o->cnt.bytes_in += n;
	else
		r->o->cnt.bytes_out += n;
}

static int side_of(const struct relay *r, const struct bufferevent *bev)
{
	return bev == r->bev[CLIENT] ? CLIENT : UPSTREAM;
}

/* The other side's output is full: stop reading S until it drains. */
static void relay_pause(struct relay *r, int s)
{
	bufferevent_disable(r->bev[s], EV_READ);
	bufferevent_setwatermark(r->bev[!s], EV_WRITE, RELAY_HIGH_WATER / 2, 0);
}

/* Move what side S has read to the other side's output. */
static void relay_move(struct relay *r, int s)
{
	struct evbuffer *in = bufferevent_get_input(r->bev[s]);
	size_t n = evbuffer_get_length(in);
	struct evbuffer *out;
	int d = !s;

	if (n == 0)
		return;
	r->bytes[s] += n;
	count(r, s, n);
	touch(r);
	if (!r->bev[d]) {		/* d is gone: nobody to deliver to */
		evbuffer_drain(in, n);
		return;
	}
	out = bufferevent_get_output(r->bev[d]);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= RELAY_HIGH_WATER)
		relay_pause(r, s);
}

/* Direction S -> other side: finished when the other side is gone, or when
 * S said EOF and the other side was shut after its last byte. */
static bool dir_done(const struct relay *r, int s)
{
	return !r->bev[!s] || (r->eof[s] && r->shut[!s]);
}

/* Pass on finished directions as SHUT_WR once flushed; free when both are
 * done.  May free R. */
static void relay_update(struct relay *r)
{
	for (int s = CLIENT; s <= UPSTREAM; s++) {
		int d = !s;

		if (!r->eof[s] || !r->bev[d] || r->shut[d])
			continue;
		if (d == UPSTREAM && !r->connected)
			continue;	/* shut after the connect */
		if (evbuffer_get_length(bufferevent_get_output(r->bev[d]))) {
			/* write callback when empty */
			bufferevent_setwatermark(r->bev[d], EV_WRITE, 0, 0);
			continue;
		}
		shutdown(bufferevent_getfd(r->bev[d]), SHUT_WR);
		r->shut[d] = true;
	}
	if (dir_done(r, CLIENT) && dir_done(r, UPSTREAM))
		relay_close(r, RELAY_CLOSE_DONE, false);
}

static void event_cb(struct bufferevent *bev, short what, void *arg);

/* libevent 2.1 reads at most 4 KiB per wakeup; a bulk transfer would cost
 * an epoll_wait, an ioctl, a read and two epoll_ctl per 4 KiB.  So after
 * libevent's read, keep reading side S in RELAY_READ_CHUNK readv()s straight
 * into the other side's output buffer (no copy), until the socket is empty
 * or that buffer is full.  EOF and errors go the way libevent reports them.
 * May free R. */
static void relay_drain(struct relay *r, int s)
{
	struct bufferevent *bev = r->bev[s];
	struct evbuffer *out = bufferevent_get_output(r->bev[!s]);
	int fd = bufferevent_getfd(bev);

	while (evbuffer_get_length(out) < RELAY_HIGH_WATER) {
		struct evbuffer_iovec v[2];
		struct iovec iov[2];
		ssize_t got;
		int nv;

		nv = evbuffer_reserve_space(out, RELAY_READ_CHUNK, v, 2);
		if (nv <= 0)
			return;
		for (int i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
		}
		got = readv(fd, iov, nv);
		if (got <= 0) {
			int err = errno;

			evbuffer_commit_space(out, v, 0);
			if (got < 0 && (err == EAGAIN || err == EINTR))
				return;
			errno = err;
			event_cb(bev, BEV_EVENT_READING |
			     (got == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), r);
			return;
		}
		r->bytes[s] += (uint64_t)got;
		count(r, s, (uint64_t)got);
		for (int i = 0; i < nv; i++) {
			size_t len = (size_t)got < v[i].iov_len ?
				     (size_t)got : v[i].iov_len;

			v[i].iov_len = len;
			got -= (ssize_t)len;
		}
		evbuffer_commit_space(out, v, nv);
	}
	relay_pause(r, s);
}

/* What libevent 2.1 reads per wakeup at most (EVBUFFER_MAX_READ). */
#define LIBEVENT_READ_MAX	4096

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	int s = side_of(r, bev);
	size_t n = evbuffer_get_length(bufferevent_get_input(bev));

	relay_move(r, s);
	/* a short read emptied the socket: no readv() just to hear EAGAIN */
	if (n >= LIBEVENT_READ_MAX && r->bev[!s] &&
	    (bufferevent_get_enabled(bev) & EV_READ))
		relay_drain(r, s);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct relay *r = arg;
	int d = side_of(r, bev), s = !d;

	if (r->bev[s] && !r->eof[s] &&
	    !(bufferevent_get_enabled(r->bev[s]) & EV_READ)) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(r->bev[s], EV_READ);
	}
	relay_update(r);
}

/* A missing unix socket is ENOENT: say what is missing. */
static const char *upstream_strerror(const struct relay_origin *o, int err)
{
	if (o->svc->upstream.sa.ss_family == AF_UNIX && err == ENOENT)
		return "the socket does not exist";
	if (o->svc->upstream.sa.ss_family == AF_UNIX && err == ECONNREFUSED)
		return "nothing listens on the socket";
	return strerror(err);
}

/* Log a failed upstream connect, at most once per 10 s per listener. */
static void upstream_failed(struct relay_set *set, struct relay_origin *o,
			    const char *what, int err)
{
	struct relay_counters *c = &o->cnt;
	struct timeval now;

	c->upstream_unlogged++;
	event_base_gettimeofday_cached(set->base, &now);
	if (c->upstream_logged.tv_sec &&
	    now.tv_sec - c->upstream_logged.tv_sec < 10)
		return;
	log_warnx("ns %s: %s: upstream %s: %s%s%s (%llu failures since last "
		  "report)", o->ns_name, o->svc->name, o->svc->upstream.text,
		  what, err ? ": " : "", err ? upstream_strerror(o, err) : "",
		  (unsigned long long)c->upstream_unlogged);
	c->upstream_logged = now;
	c->upstream_unlogged = 0;
}

/* The first EOF: from now on the shorter fin timeout applies, counted from
 * the last byte. */
static void fin_timer(struct relay *r)
{
	struct timeval now, idle, limit;

	if (!r->connected)
		return;
	event_base_gettimeofday_cached(r->set->base, &now);
	ms_to_tv(r->o->svc->fin_timeout_ms, &limit);
	timersub(&now, &r->last, &idle);
	if (timercmp(&idle, &limit, <))
		timersub(&limit, &idle, &limit);
	else
		timerclear(&limit);
	evtimer_add(r->timer, &limit);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay *r = arg;
	int s = side_of(r, bev), err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		struct timeval tv;

		r->connected = true;
		touch(r);
		ms_to_tv(r->o->svc->idle_timeout_ms, &tv);
		evtimer_add(r->timer, &tv);
		if (r->eof[CLIENT])	/* the client finished while we connected */
			fin_timer(r);
		log_debug("ns %s: %s: connection %llu: upstream connected",
			  r->o->ns_name, r->o->svc->name,
			  (unsigned long long)r->id);
		relay_update(r);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		relay_move(r, s);
		if (!r->eof[!s])
			fin_timer(r);
		r->eof[s] = true;
		bufferevent_disable(bev, EV_READ);
		relay_update(r);
		return;
	}
	/* BEV_EVENT_ERROR */
	if (s == UPSTREAM && !r->connected) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		getsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_ERROR,
			   &soerr, &len);
		upstream_failed(r->set, r->o, "connect", soerr ? soerr : err);
		relay_close(r, RELAY_CLOSE_CONNECT_FAILED, true);
		return;
	}
	/* s can take no more: bytes still to come for it are lost, unless
	 * its EOF came and the direction towards it already finished */
	if (!r->eof[s] || (r->bev[!s] && !r->shut[s])) {
		log_debug("ns %s: %s: connection %llu: %s error: %s",
			  r->o->ns_name, r->o->svc->name,
			  (unsigned long long)r->id,
			  s == CLIENT ? "client" : "upstream", strerror(err));
		relay_close(r, s == CLIENT ? RELAY_CLOSE_CLIENT_RESET :
					     RELAY_CLOSE_UPSTREAM_RESET, true);
		return;
	}
	/* a normal end of s: what s sent is still delivered */
	bufferevent_free(bev);
	r->bev[s] = NULL;
	relay_update(r);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	const struct config_service *svc = r->o->svc;
	struct timeval now, idle, limit;
	bool fin = r->eof[CLIENT] || r->eof[UPSTREAM];

	if (!r->connected) {
		upstream_failed(r->set, r->o, "connect timed out", 0);
		relay_close(r, RELAY_CLOSE_CONNECT_TIMEOUT, true);
		return;
	}
	event_base_gettimeofday_cached(r->set->base, &now);
	ms_to_tv(fin ? svc->fin_timeout_ms : svc->idle_timeout_ms, &limit);
	timersub(&now, &r->last, &idle);
	if (!timercmp(&idle, &limit, <)) {
		relay_close(r, fin ? RELAY_CLOSE_FIN_TIMEOUT :
				     RELAY_CLOSE_IDLE_TIMEOUT, false);
		return;
	}
	timersub(&limit, &idle, &limit);
	evtimer_add(r->timer, &limit);
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

/* No connection could be set up: reset the client, count, report. */
static int start_failed(struct relay_set *set, struct relay_origin *o,
			int fd, enum relay_close why, const char *what,
			int err)
{
	if (fd >= 0) {
		reset_fd(fd);
		close(fd);
	}
	o->cnt.closed[why]++;
	if (why == RELAY_CLOSE_CONNECT_FAILED)
		upstream_failed(set, o, what, err);
	else if (shortage(err))
		set->shortage(set->arg, err);
	else
		log_warnx("ns %s: %s: cannot relay a connection: %s: %s",
			  o->ns_name, o->svc->name, what, strerror(err));
	return -err;
}

int relay_start(struct relay_set *set, struct relay_origin *o, int fd,
		const struct sockaddr *peer)
{
	const struct config_sockaddr *up = &o->svc->upstream;
	struct relay *r;
	struct timeval tv;
	int ufd, err;

	ufd = socket(up->sa.ss_family,
		     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0)
		return start_failed(set, o, fd, RELAY_CLOSE_NO_RESOURCES,
				    "socket", errno);
	/* connect here, not in libevent: a unix socket fails at once, and
	 * its errno is what the admin needs to read */
	if (connect(ufd, (const struct sockaddr *)&up->sa, up->len) < 0 &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		err = errno;
		close(ufd);
		return start_failed(set, o, fd, shortage(err) ?
				    RELAY_CLOSE_NO_RESOURCES :
				    RELAY_CLOSE_CONNECT_FAILED, "connect", err);
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		close(ufd);
		return start_failed(set, o, fd, RELAY_CLOSE_NO_RESOURCES,
				    "calloc", ENOMEM);
	}
	r->bev[CLIENT] = bufferevent_socket_new(set->base, fd,
						BEV_OPT_CLOSE_ON_FREE);
	r->bev[UPSTREAM] = bufferevent_socket_new(set->base, ufd,
						  BEV_OPT_CLOSE_ON_FREE);
	r->timer = evtimer_new(set->base, timer_cb, r);
	if (!r->bev[CLIENT] || !r->bev[UPSTREAM] || !r->timer) {
		/* libevent sets no errno: these fail for memory only */
		if (r->bev[CLIENT])
			bufferevent_free(r->bev[CLIENT]);	/* closes fd */
		else
			close(fd);
		if (r->bev[UPSTREAM])
			bufferevent_free(r->bev[UPSTREAM]);
		else
			close(ufd);
		if (r->timer)
			event_free(r->timer);
		free(r);
		return start_failed(set, o, -1, RELAY_CLOSE_NO_RESOURCES,
				    "bufferevent_socket_new", ENOMEM);
	}

	r->set = set;
	r->o = o;
	r->id = ++set->next_id;
	o->cnt.accepted++;
	o->cnt.active++;
	TAILQ_INSERT_TAIL(&set->relays, r, entry);
	set->n++;
	for (int s = CLIENT; s <= UPSTREAM; s++) {
		bufferevent_setcb(r->bev[s], read_cb, write_cb, event_cb, r);
		bufferevent_set_max_single_write(r->bev[s], RELAY_HIGH_WATER);
		bufferevent_enable(r->bev[s], EV_READ | EV_WRITE);
	}
	touch(r);
	ms_to_tv(o->svc->connect_timeout_ms, &tv);
	evtimer_add(r->timer, &tv);
	if (log_verbose()) {
		char from[INET6_ADDRSTRLEN + 8] = "?";

		if (peer)
			peer_text(peer, from, sizeof(from));
		log_debug("ns %s: %s: connection %llu from %s to %s",
			  o->ns_name, o->svc->name, (unsigned long long)r->id,
			  from, up->text);
	}
	/* Last: the connect is under way; libevent reports its end.  (NULL:
	 * "already connecting"; a failure is reported later, never here.) */
	bufferevent_socket_connect(r->bev[UPSTREAM], NULL, 0);
	return 0;
}

uint64_t relay_count(const struct relay_set *set)
{
	return set->n;
}

struct relay_set *relay_set_new(struct event_base *base,
				relay_shortage_fn shortage_cb, void *arg)
{
	struct relay_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->base = base;
	set->shortage = shortage_cb;
	set->arg = arg;
	TAILQ_INIT(&set->relays);
	return set;
}

void relay_close_all(struct relay_set *set)
{
	struct relay *r;

	while ((r = TAILQ_FIRST(&set->relays)))
		relay_close(r, RELAY_CLOSE_SHUTDOWN, false);
}

void relay_set_free(struct relay_set *set)
{
	if (!set)
		return;
	relay_close_all(set);
	free(set);
}
