/* SPDX-License-Identifier: MIT */
/* relay: the byte path between a client in a namespace and its upstream.
 *
 * Theory of operation
 *
 * A connection is one struct relay with two sides, side[CLIENT] and
 * side[UPSTREAM], each a socket and one struct event.  The upstream connect
 * starts the moment the client is accepted; the client is read from the
 * start, and what it sends before the upstream is connected waits in the
 * upstream's output, bounded like any other.
 *
 * A byte leaves in the loop turn it arrived in.  Bytes read from side s go
 * to side d = !s by one of two paths, chosen per read while nothing is
 * waiting for d (bytes for d never overtake each other: a path is kept
 * while it still holds bytes):
 *  - splice: TCP to TCP, splice(2) from s into a pipe and from the pipe
 *    into d, no copy in user space.  Pipes come from a bounded pool of the
 *    set and go back the moment they are empty, so an idle connection holds
 *    none; when the pool is exhausted the connection copies.
 *  - copy: read() into the set's scratch buffer and write() to d at once;
 *    what d's kernel buffer does not take waits in out[d], an evbuffer that
 *    exists only while it holds bytes, and later reads go straight into it.
 * So a small message costs one read and one write after the shared
 * epoll_wait, and EPOLLOUT is asked for only when d would not take
 * everything.  No FIONREAD: a read shorter than asked emptied the socket.
 *
 * Backpressure: when what waits for d reaches RELAY_HIGH_WATER (copy) or
 * fills the pipe (splice), reading s stops; it resumes when d has drained
 * below half of it (copy) or emptied the pipe (splice).  So a direction
 * holds at most RELAY_HIGH_WATER plus one read, or one pipe.
 *
 * Half-close, one direction at a time: EOF from s sets eof[s] and stops
 * reading s.  Once nothing waits for d, shutdown(d, SHUT_WR) passes the FIN
 * on and sets shut[d].  The other direction keeps flowing.  A direction is
 * done when its source said EOF and its destination was shut (or is gone);
 * the relay is freed when both are.  relay_settle() evaluates all of this
 * after every event and derives each side's event mask from the state, so
 * there is one place where the state machine lives.
 *
 * Closing: relay_close() is the one way a connection ends, from any state.
 * A side that would lose bytes is reset (SO_LINGER {1, 0}) rather than sent
 * a FIN, so that a truncated stream never looks complete: a side with bytes
 * still waiting for it (in out[] or a pipe) when a timeout or shutdown ends
 * the connection, and both sides when one side fails before its direction
 * towards it finished (a reset or error on s before s's EOF, or an error on
 * s while the other side still had bytes to send to it).  An error on s
 * after its EOF and after everything for s was delivered is a normal end of
 * s.  A failed or timed-out upstream connect resets the client.
 *
 * Timeouts: the client's event carries the connection's one timer (a plain
 * timer once the client's socket is gone), so a connection has no timer
 * event of its own.  Before the upstream is connected it is the connect
 * timeout; then the idle timeout (no byte read either way), or the shorter
 * fin timeout once one direction has ended.  Every read re-arms it for the
 * full period through libevent's common timeouts (a queue per duration,
 * O(1), no heap); when it fires early (a period measured from an earlier
 * moment) it re-arms for the remainder.
 */
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

enum { CLIENT, UPSTREAM };

/* Reads per event at most, so that one busy connection lets the others
 * run: 16 * 60 KiB (copy) or 16 pipes' worth (splice). */
#define READS_PER_EVENT		16
/* Empty pipes kept for the next burst; the rest are closed. */
#define PIPES_KEPT		16

struct relay_pipe {
	int fd[2];			/* read end, write end */
	size_t size;			/* capacity */
	struct relay_pipe *next;	/* in the free list */
};

struct side {
	int fd;				/* -1 once gone */
	short mask;			/* EV_READ|EV_WRITE the event has */
	bool eof;			/* nothing more comes from this side */
	bool shut;			/* SHUT_WR passed on to this side */
	bool paused;			/* not read: the other side is full */
	struct evbuffer *out;		/* copy: bytes for it; NULL if none */
	struct relay_pipe *pipe;	/* splice: bytes for it; NULL if none */
	size_t piped;			/* bytes in pipe */
	struct event ev;
};

struct relay {
	TAILQ_ENTRY(relay) entry;
	struct relay_set *set;
	struct relay_origin *o;
	struct timeval last;		/* last byte read, either side */
	uint64_t id;
	uint64_t bytes[2];		/* bytes read from each side */
	bool connected;			/* upstream connect completed */
	bool tcp;			/* both sides TCP: splice may be used */
	struct side side[2];
};

TAILQ_HEAD(relay_list, relay);

struct relay_set {
	struct event_base *base;
	struct relay_list relays;
	uint64_t n;
	uint64_t next_id;		/* connection ids, for logs */
	relay_shortage_fn shortage;
	void *arg;
	uint8_t *scratch;		/* copy path: RELAY_READ_CHUNK */
	/* the pipe pool */
	unsigned max_pipes;		/* 0: copy only */
	unsigned pipes;			/* open, in use or free */
	unsigned n_free;
	struct relay_pipe *free_pipes;
	struct relay_stats stats;
	/* common timeouts, by duration */
	struct {
		uint64_t ms;
		const struct timeval *tv;
	} common[8];
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

static void reset_fd(int fd)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
}

/* ---- the pipe pool --------------------------------------------------- */

/* An empty pipe, or NULL (pool exhausted, or no descriptor): copy then. */
static struct relay_pipe *pipe_get(struct relay_set *set)
{
	struct relay_pipe *p = set->free_pipes;
	int sz;

	if (p) {
		set->free_pipes = p->next;
		set->n_free--;
		return p;
	}
	if (set->pipes >= set->max_pipes) {
		set->stats.pipe_misses++;
		return NULL;
	}
	p = malloc(sizeof(*p));
	if (!p || pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(p);
		set->stats.pipe_misses++;
		return NULL;
	}
	/* as large as the copy path's high-water mark: fewer calls per byte;
	 * past the user's pipe-user-pages-soft this fails, and the pipe keeps
	 * the size it has */
	sz = fcntl(p->fd[0], F_SETPIPE_SZ, RELAY_HIGH_WATER);
	if (sz < 0)
		sz = fcntl(p->fd[0], F_GETPIPE_SZ);
	p->size = sz > 0 ? (size_t)sz : 4096;
	set->pipes++;
	return p;
}

static void pipe_close(struct relay_set *set, struct relay_pipe *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
	free(p);
	set->pipes--;
}

/* Give P back: kept if empty and the free list is short, else closed (a
 * pipe that still holds bytes cannot be reused). */
static void pipe_put(struct relay_set *set, struct relay_pipe *p, bool empty)
{
	if (!empty || set->n_free >= PIPES_KEPT) {
		pipe_close(set, p);
		return;
	}
	p->next = set->free_pipes;
	set->free_pipes = p;
	set->n_free++;
}

/* ---- timers ---------------------------------------------------------- */

/* libevent's common timeout for a duration of MS, or a plain one. */
static const struct timeval *common_tv(struct relay_set *set, uint64_t ms,
				       struct timeval *tv)
{
	const struct timeval *c;
	size_t i;

	for (i = 0; i < sizeof(set->common) / sizeof(set->common[0]); i++) {
		if (set->common[i].tv && set->common[i].ms == ms)
			return set->common[i].tv;
		if (!set->common[i].tv)
			break;
	}
	ms_to_tv(ms, tv);
	c = event_base_init_common_timeout(set->base, tv);
	if (!c)
		return tv;
	if (i == sizeof(set->common) / sizeof(set->common[0]))
		i = (size_t)(ms % i);	/* full: replace one */
	set->common[i].ms = ms;
	set->common[i].tv = c;
	return c;
}

static uint64_t limit_ms(const struct relay *r)
{
	const struct config_service *svc = r->o->svc;

	if (!r->connected)
		return svc->connect_timeout_ms;
	if (r->side[CLIENT].eof || r->side[UPSTREAM].eof)
		return svc->fin_timeout_ms;
	return svc->idle_timeout_ms;
}

/* When the timer should fire, from R->last: the common timeout of the
 * period if R->last is now, else the remainder. */
static const struct timeval *timer_tv(struct relay *r, struct timeval *tv)
{
	struct timeval now, elapsed, limit;
	uint64_t ms = limit_ms(r);

	event_base_gettimeofday_cached(r->set->base, &now);
	if (!timercmp(&now, &r->last, >))
		return common_tv(r->set, ms, tv);
	timersub(&now, &r->last, &elapsed);
	ms_to_tv(ms, &limit);
	if (timercmp(&elapsed, &limit, <))
		timersub(&limit, &elapsed, tv);
	else
		timerclear(tv);
	return tv;
}

/* A byte was read (or the period changed): the timer counts from now. */
static void touch(struct relay *r)
{
	struct timeval tv;

	event_base_gettimeofday_cached(r->set->base, &r->last);
	if (r->connected)
		event_add(&r->side[CLIENT].ev, timer_tv(r, &tv));
}

/* ---- state ----------------------------------------------------------- */

static size_t pending(const struct side *x)
{
	return x->piped + (x->out ? evbuffer_get_length(x->out) : 0);
}

static bool side_ready(const struct relay *r, int s)
{
	return r->side[s].fd >= 0 && (s == CLIENT || r->connected);
}

static void count(struct relay *r, int s, uint64_t n)
{
	r->bytes[s] += n;
	if (s == CLIENT)
		r->o->cnt.bytes_in += n;
	else
		r->o->cnt.bytes_out += n;
}

static void side_cb(evutil_socket_t fd, short what, void *arg);

/* Give side S's event the mask its state asks for (the client's also
 * carries the timer). */
static void side_sync(struct relay *r, int s)
{
	struct side *x = &r->side[s];
	short want = 0;
	struct timeval tv;

	if (x->fd >= 0) {
		if (!x->eof && !x->paused && (s == CLIENT || r->connected))
			want |= EV_READ;
		if (s == UPSTREAM && !r->connected)
			want |= EV_WRITE;	/* the connect's end */
		else if (pending(x) && !x->shut)
			want |= EV_WRITE;
	}
	if (want == x->mask)
		return;
	x->mask = want;
	event_del(&x->ev);
	if (s == UPSTREAM && !want)
		return;
	event_assign(&x->ev, r->set->base, want ? x->fd : -1,
		     (short)(want | EV_PERSIST), side_cb, r);
	event_add(&x->ev, s == CLIENT ? timer_tv(r, &tv) : NULL);
}

/* The one way a connection ends.  RESET: both sides lose bytes, reset
 * both; otherwise a side is reset only if bytes waiting for it are being
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
		struct side *x = &r->side[s];

		event_del(&x->ev);
		if (x->fd >= 0) {
			if (reset || pending(x))
				reset_fd(x->fd);
			close(x->fd);
		}
		if (x->out)
			evbuffer_free(x->out);
		if (x->pipe)
			pipe_put(set, x->pipe, false);
	}
	o->cnt.closed[why]++;
	o->cnt.active--;
	TAILQ_REMOVE(&set->relays, r, entry);
	set->n--;
	free(r);
	if (o->closed)
		o->closed(o, why);
}

/* Side S ended normally after an error (its EOF came, everything for it
 * was delivered): close it, the other direction goes on. */
static void side_gone(struct relay *r, int s)
{
	struct side *x = &r->side[s];

	event_del(&x->ev);
	x->mask = -1;		/* re-synced: the client's carries the timer */
	close(x->fd);
	x->fd = -1;
	if (x->out) {
		evbuffer_free(x->out);
		x->out = NULL;
	}
	if (x->pipe) {
		pipe_put(r->set, x->pipe, false);
		x->pipe = NULL;
		x->piped = 0;
	}
}

/* A read or write on S failed with ERR.  Returns -1 if R was freed. */
static int side_error(struct relay *r, int s, int err)
{
	struct side *x = &r->side[s];

	/* s can take no more: bytes still to come for it are lost, unless
	 * its EOF came and the direction towards it already finished */
	if (!x->eof || (r->side[!s].fd >= 0 && !x->shut)) {
		log_debug("ns %s: %s: connection %llu: %s error: %s",
			  r->o->ns_name, r->o->svc->name,
			  (unsigned long long)r->id,
			  s == CLIENT ? "client" : "upstream", strerror(err));
		relay_close(r, s == CLIENT ? RELAY_CLOSE_CLIENT_RESET :
					     RELAY_CLOSE_UPSTREAM_RESET, true);
		return -1;
	}
	side_gone(r, s);
	return 0;
}

/* EOF from S. */
static void side_eof(struct relay *r, int s)
{
	bool first = !r->side[!s].eof;

	r->side[s].eof = true;
	if (first && r->connected)
		touch(r);	/* from now on the fin timeout */
}

/* Write what waits for D.  Returns -1 if R was freed. */
static int push(struct relay *r, int d)
{
	struct side *x = &r->side[d];
	ssize_t n;

	if (x->pipe) {
		while (x->piped) {
			n = splice(x->pipe->fd[0], NULL, x->fd, NULL, x->piped,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				x->piped -= (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			return side_error(r, d, n < 0 ? errno : EPIPE);
		}
		if (!x->piped) {
			pipe_put(r->set, x->pipe, true);
			x->pipe = NULL;
		}
	} else if (x->out) {
		/* (libevent returns -1 for an empty buffer, errno untouched) */
		if (evbuffer_get_length(x->out) &&
		    evbuffer_write(x->out, x->fd) < 0 &&
		    errno != EAGAIN && errno != EINTR)
			return side_error(r, d, errno);
		if (!evbuffer_get_length(x->out)) {
			evbuffer_free(x->out);
			x->out = NULL;
		}
	}
	return 0;
}

/* Queue N bytes at P for D (the copy path). */
static int queue(struct side *x, const void *p, size_t n)
{
	if (!x->out && !(x->out = evbuffer_new()))
		return -ENOMEM;
	return evbuffer_add(x->out, p, n) < 0 ? -ENOMEM : 0;
}

/* One read from S: returns bytes read (counted), 0 at EOF, -errno. */
static ssize_t pull_splice(struct relay *r, int s, size_t room)
{
	struct side *x = &r->side[!s];
	ssize_t n;

	do
		n = splice(r->side[s].fd, NULL, x->pipe->fd[1], NULL, room,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	x->piped += (size_t)n;
	r->set->stats.spliced += (uint64_t)n;
	return n;
}

/* Read into the other side's output buffer (copy path, bytes waiting). */
static ssize_t pull_queue(struct relay *r, int s, size_t *asked)
{
	struct side *x = &r->side[!s];
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	ssize_t got, left;
	int nv;

	if (!x->out && !(x->out = evbuffer_new()))
		return -ENOMEM;
	nv = evbuffer_reserve_space(x->out, RELAY_READ_CHUNK, v, 2);
	if (nv <= 0)
		return -ENOMEM;
	*asked = 0;
	for (int i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
		*asked += v[i].iov_len;
	}
	do
		got = readv(r->side[s].fd, iov, nv);
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		int err = errno;

		evbuffer_commit_space(x->out, v, 0);
		return got < 0 ? -err : 0;
	}
	left = got;
	for (int i = 0; i < nv; i++) {
		size_t len = (size_t)left < v[i].iov_len ? (size_t)left :
			     v[i].iov_len;

		v[i].iov_len = len;
		left -= (ssize_t)len;
	}
	evbuffer_commit_space(x->out, v, nv);
	r->set->stats.copied += (uint64_t)got;
	return got;
}

/* Side S is readable: move what it has to the other side, at once where
 * the other side takes it.  Returns -1 if R was freed. */
static int on_readable(struct relay *r, int s)
{
	struct relay_set *set = r->set;
	struct side *src = &r->side[s], *dst = &r->side[!s];
	int d = !s;
	bool moved = false;

	for (int i = 0; i < READS_PER_EVENT && !src->eof && !src->paused;
	     i++) {
		size_t asked;
		ssize_t n;
		bool direct = side_ready(r, d) && !pending(dst);

		if (dst->fd < 0) {
			/* nobody to deliver to: read and discard */
			asked = RELAY_READ_CHUNK;
			do
				n = read(src->fd, set->scratch, asked);
			while (n < 0 && errno == EINTR);
			if (n < 0)
				n = -errno;
		} else if (dst->pipe ||
			   (direct && r->tcp && set->max_pipes &&
			    (dst->pipe = pipe_get(set)))) {
			asked = dst->pipe->size - dst->piped;
			if (!asked) {
				src->paused = true;
				break;
			}
			n = pull_splice(r, s, asked);
			if (n == -EAGAIN && dst->piped) {
				/* the pipe is full (slots) or d is slow */
				src->paused = true;
				break;
			}
			if (!dst->piped && n <= 0) {
				pipe_put(set, dst->pipe, true);
				dst->pipe = NULL;
			}
		} else if (direct) {
			asked = RELAY_READ_CHUNK;
			do
				n = read(src->fd, set->scratch, asked);
			while (n < 0 && errno == EINTR);
			if (n < 0)
				n = -errno;
			if (n > 0) {
				ssize_t w;

				set->stats.copied += (uint64_t)n;
				do
					w = send(dst->fd, set->scratch,
						 (size_t)n, MSG_NOSIGNAL);
				while (w < 0 && errno == EINTR);
				if (w < 0 && errno != EAGAIN) {
					count(r, s, (uint64_t)n);
					return side_error(r, d, errno);
				}
				if (w < 0)
					w = 0;
				if (w < n && queue(dst, set->scratch + w,
						   (size_t)(n - w)) < 0)
					n = -ENOMEM;
			}
		} else {
			if (pending(dst) >= RELAY_HIGH_WATER) {
				src->paused = true;
				break;
			}
			n = pull_queue(r, s, &asked);
		}

		if (n > 0) {
			count(r, s, (uint64_t)n);
			moved = true;
			if (dst->pipe && direct && push(r, d) < 0)
				return -1;
			if ((size_t)n < asked)
				break;	/* the socket is empty */
			continue;
		}
		if (n == 0) {
			side_eof(r, s);
			break;
		}
		if (n == -EAGAIN)
			break;
		if (n == -ENOMEM) {
			log_warnx("ns %s: %s: connection %llu: out of memory",
				  r->o->ns_name, r->o->svc->name,
				  (unsigned long long)r->id);
			relay_close(r, RELAY_CLOSE_NO_RESOURCES, true);
			return -1;
		}
		return side_error(r, s, (int)-n);
	}
	if (moved)
		touch(r);
	return 0;
}

/* A failed upstream connect is logged once per 10 s per listener. */
static void upstream_failed(struct relay_set *set, struct relay_origin *o,
			    const char *what, int err);

static int on_connected(struct relay *r)
{
	struct side *x = &r->side[UPSTREAM];
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr) {
		upstream_failed(r->set, r->o, "connect", soerr);
		relay_close(r, RELAY_CLOSE_CONNECT_FAILED, true);
		return -1;
	}
	r->connected = true;
	touch(r);
	log_debug("ns %s: %s: connection %llu: upstream connected",
		  r->o->ns_name, r->o->svc->name, (unsigned long long)r->id);
	return 0;
}

/* After every event: resume what drained, pass FINs on, free a finished
 * connection, give both events the masks the state asks for. */
static void relay_settle(struct relay *r)
{
	for (int s = CLIENT; s <= UPSTREAM; s++) {
		struct side *src = &r->side[s], *dst = &r->side[!s];

		if (src->paused &&
		    (dst->fd < 0 || (dst->pipe ? !dst->piped :
				     pending(dst) < RELAY_HIGH_WATER / 2)))
			src->paused = false;
		if (!src->eof || dst->fd < 0 || dst->shut || pending(dst))
			continue;
		if (s == CLIENT && !r->connected)
			continue;	/* shut after the connect */
		/* unless the other direction is over too: then the close()
		 * that follows at once sends the FIN */
		if (src->fd >= 0 && !(dst->eof && src->shut))
			shutdown(dst->fd, SHUT_WR);
		dst->shut = true;
	}
	for (int s = CLIENT; s <= UPSTREAM; s++) {
		const struct side *src = &r->side[s], *dst = &r->side[!s];

		if (dst->fd >= 0 && !(src->eof && dst->shut))
			goto live;
	}
	relay_close(r, RELAY_CLOSE_DONE, false);
	return;
live:
	side_sync(r, CLIENT);
	side_sync(r, UPSTREAM);
}

static void on_timeout(struct relay *r)
{
	struct timeval now, elapsed, limit;
	bool fin = r->side[CLIENT].eof || r->side[UPSTREAM].eof;

	if (!r->connected) {
		upstream_failed(r->set, r->o, "connect timed out", 0);
		relay_close(r, RELAY_CLOSE_CONNECT_TIMEOUT, true);
		return;
	}
	event_base_gettimeofday_cached(r->set->base, &now);
	timersub(&now, &r->last, &elapsed);
	ms_to_tv(limit_ms(r), &limit);
	if (!timercmp(&elapsed, &limit, <)) {
		relay_close(r, fin ? RELAY_CLOSE_FIN_TIMEOUT :
				     RELAY_CLOSE_IDLE_TIMEOUT, false);
		return;
	}
	timersub(&limit, &elapsed, &limit);	/* fired early */
	event_add(&r->side[CLIENT].ev, &limit);
}

static void side_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	int s = fd >= 0 && fd == r->side[UPSTREAM].fd ? UPSTREAM : CLIENT;

	if (what & EV_TIMEOUT) {
		on_timeout(r);
		return;
	}
	if (what & EV_WRITE) {
		if (s == UPSTREAM && !r->connected) {
			if (on_connected(r) < 0)
				return;
		}
		if (side_ready(r, s) && push(r, s) < 0)
			return;
	}
	if ((what & EV_READ) && r->side[s].fd >= 0 &&
	    on_readable(r, s) < 0)
		return;
	relay_settle(r);
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

static bool is_inet(int family)
{
	return family == AF_INET || family == AF_INET6;
}

int relay_start(struct relay_set *set, struct relay_origin *o, int fd,
		const struct sockaddr *peer)
{
	const struct config_sockaddr *up = &o->svc->upstream;
	struct relay *r;
	int ufd, err, family;
	bool connected = false;

	ufd = socket(up->sa.ss_family,
		     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ufd < 0)
		return start_failed(set, o, fd, RELAY_CLOSE_NO_RESOURCES,
				    "socket", errno);
	/* a unix socket connects (or fails) at once, and its errno is what
	 * the admin needs to read */
	if (connect(ufd, (const struct sockaddr *)&up->sa, up->len) == 0) {
		connected = true;
	} else if (errno != EINPROGRESS && errno != EAGAIN) {
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
	r->id = ++set->next_id;
	r->side[CLIENT].fd = fd;
	r->side[UPSTREAM].fd = ufd;
	for (int s = CLIENT; s <= UPSTREAM; s++)
		event_assign(&r->side[s].ev, set->base, -1, EV_PERSIST,
			     side_cb, r);
	o->cnt.accepted++;
	o->cnt.active++;
	TAILQ_INSERT_TAIL(&set->relays, r, entry);
	set->n++;
	event_base_gettimeofday_cached(set->base, &r->last);
	r->connected = connected;
	/* the client's event carries the timer: always added */
	r->side[CLIENT].mask = -1;
	side_sync(r, CLIENT);
	side_sync(r, UPSTREAM);
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
	TAILQ_INIT(&set->relays);
	return set;
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
		pipe_close(set, p);
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
