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
 * Which path: copy, until a read fills the whole chunk (RELAY_READ_CHUNK);
 * then the source is in bulk and is read by splice until a short splice
 * (under RELAY_SMALL) finds it nearly empty.  So a small message costs one
 * read and one write after the shared epoll_wait, and a bulk transfer
 * moves through pipes.
 *
 * Readiness: each socket is registered once, edge-triggered, for reading
 * and writing (EV_ET), and its registration never changes while it is
 * open: no epoll_ctl but the add and the removal.  Each side remembers
 * what the kernel said: rready until a read finds the socket empty (a copy
 * read shorter than asked, or EAGAIN; once the peer's FIN is known from
 * EV_CLOSED, only EOF or EAGAIN: a read stops short before the FIN), and
 * wready until a write falls short
 * (the kernel then signals the next edge when room frees).  Work left over
 * (the READS_PER_EVENT bound, a source resumed) is queued with
 * event_active(), never waited for.  An upstream's first edge says its
 * connect ended: writable without an error is connected (an error always
 * comes with EV_READ, as libevent reports EPOLLERR/EPOLLHUP); only with
 * EV_READ is SO_ERROR read.  No FIONREAD.
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
 * after every event (and resumes a paused source, re-registers a side whose
 * socket went), so there is one place where the state machine lives.
 *
 * Closing: relay_close() is the one way a connection ends, from any state.
 * A side that would lose bytes is reset (SO_LINGER {1, 0}) rather than sent
 * a FIN, so that a truncated stream never looks complete: a side whose
 * direction is not complete (its source has not sent its EOF, or bytes
 * still wait for it in out[] or a pipe) when a timeout or shutdown ends
 * the connection, and both sides when one side fails before its direction
 * towards it finished (a reset or error on s before s's EOF, or an error on
 * s while the other side still had bytes to send to it).  An error on s
 * after its EOF and after everything for s was delivered is a normal end of
 * s.  A failed or timed-out upstream connect resets the client.
 *
 * Failover: a connection whose server fails before its first byte (the
 * connect fails or times out, the server closes or resets; not a server
 * that ends after the client ended) tells the server's health
 * (upstream.c) through relay_failover(), which moves it once to the next
 * server in service when nothing the client sent has reached the server:
 * the upstream side gets a new socket and a new connect timeout, and what
 * the client sent meanwhile, still in the upstream side's buffer, goes to
 * the new server.  Only when it cannot move is the client reset.  The
 * server's first byte is the success it reports.
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
#include "engine/relay_int.h"
#include "engine/upstream.h"

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
	[RELAY_CLOSE_NO_UPSTREAM] = "no-upstream",
};

const char *relay_close_name(enum relay_close why)
{
	return why < RELAY_CLOSE_MAX ? close_names[why] : "?";
}

static const char *const drop_names[RELAY_DROP_MAX] = {
	[RELAY_DROP_NO_RESOURCES] = "no-resources",
	[RELAY_DROP_LIMIT] = "limit",
	[RELAY_DROP_NO_UPSTREAM] = "no-upstream",
	[RELAY_DROP_UPSTREAM_SEND] = "upstream-send",
	[RELAY_DROP_CLIENT_SEND] = "client-send",
};

const char *relay_drop_name(enum relay_drop why)
{
	return why < RELAY_DROP_MAX ? drop_names[why] : "?";
}

void  relay_ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

void  relay_reset_fd(int fd)
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
	if (set->pipe_bytes + RELAY_PIPE_MIN > set->pipe_budget) {
		set->stats.pipe_misses++;
		return NULL;
	}
	p = malloc(sizeof(*p));
	if (!p || pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(p);
		set->stats.pipe_misses++;
		return NULL;
	}
	/* large: a 1 MiB pipe moves a MiB in two splices where a 256 KiB one
	 * takes eight (GB per CPU-second +35% in make bench); smaller when
	 * the budget is short.  The kernel counts every pipe of the user
	 * against pipe-user-pages-soft, and past it gives an unprivileged
	 * user pipes of two pages and refuses to grow one: a pipe that ends
	 * up under RELAY_PIPE_MIN is not used */
	sz = -1;
	for (size_t want = RELAY_PIPE_BIG; sz < 0 && want >= RELAY_PIPE_MID;
	     want /= 4)
		if (set->pipe_bytes + want <= set->pipe_budget)
			sz = fcntl(p->fd[0], F_SETPIPE_SZ, (int)want);
	if (sz < 0)
		sz = fcntl(p->fd[0], F_GETPIPE_SZ);
	if (sz < RELAY_PIPE_MIN) {
		close(p->fd[0]);
		close(p->fd[1]);
		free(p);
		set->stats.pipe_misses++;
		return NULL;
	}
	p->size = (size_t)sz;
	set->pipe_bytes += p->size;
	set->pipes++;
	return p;
}

void  relay_pipe_close(struct relay_set *set, struct relay_pipe *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
	set->pipe_bytes -= p->size;
	free(p);
	set->pipes--;
}

/* Give P back: kept if empty and the free list is short, else closed (a
 * pipe that still holds bytes cannot be reused). */
static void pipe_put(struct relay_set *set, struct relay_pipe *p, bool empty)
{
	if (!empty || set->n_free >= PIPES_KEPT) {
		relay_pipe_close(set, p);
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
	relay_ms_to_tv(ms, tv);
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
const struct timeval * relay_timer_tv(struct relay *r, struct timeval *tv)
{
	struct timeval now, elapsed, limit;
	uint64_t ms = limit_ms(r);

	event_base_gettimeofday_cached(r->set->base, &now);
	if (!timercmp(&now, &r->last, >))
		return common_tv(r->set, ms, tv);
	timersub(&now, &r->last, &elapsed);
	relay_ms_to_tv(ms, &limit);
	if (timercmp(&elapsed, &limit, <))
		timersub(&limit, &elapsed, tv);
	else
		timerclear(tv);
	return tv;
}

/* A byte was read (or the period changed): the timer counts from now. */
void  relay_touch(struct relay *r)
{
	struct timeval tv;

	event_base_gettimeofday_cached(r->set->base, &r->last);
	if (r->connected)
		event_add(&r->side[CLIENT].ev, relay_timer_tv(r, &tv));
}

/* ---- state ----------------------------------------------------------- */

static size_t pending(const struct side *x)
{
	return x->piped + (x->out ? evbuffer_get_length(x->out) : 0);
}

/* Bytes from SRC go by splice from now on (if a pipe is to be had). */
static bool splices(const struct relay *r, const struct side *src)
{
	return src->bulk && r->tcp && r->set->max_pipes;
}

static bool side_ready(const struct relay *r, int s)
{
	return r->side[s].fd >= 0 && (s == CLIENT || r->connected);
}

static void count(struct relay *r, int s, uint64_t n)
{
	/* the server spoke: it is alive and serving */
	if (s == UPSTREAM && !r->bytes[UPSTREAM] && n && r->srv)
		upstream_srv_result(r->srv, true, NULL);
	r->bytes[s] += n;
	if (s == CLIENT)
		r->o->cnt->bytes_in += n;
	else
		r->o->cnt->bytes_out += n;
}

void  relay_side_cb(evutil_socket_t fd, short what, void *arg);

/* Give side S's event the mask its state asks for (the client's also
 * carries the timer). */
void  relay_side_sync(struct relay *r, int s)
{
	struct side *x = &r->side[s];
	short want = x->fd >= 0 ? EV_READ | EV_WRITE | EV_CLOSED | EV_ET : 0;
	struct timeval tv;

	if (want == x->mask)
		return;
	x->mask = want;
	event_del(&x->ev);
	if (s == UPSTREAM && !want)
		return;
	event_assign(&x->ev, r->set->base, want ? x->fd : -1,
		     (short)(want | EV_PERSIST), relay_side_cb, r);
	event_add(&x->ev, s == CLIENT ? relay_timer_tv(r, &tv) : NULL);
}

/* The one way a connection ends.  RESET: both sides lose bytes, reset
 * both.  Otherwise a side gets a FIN only when the direction towards it
 * is complete: its source's EOF came and everything was delivered.  A
 * side with bytes still waiting for it, or whose source has not ended (a
 * timeout or shutdown cutting a stream, however empty the buffers happen
 * to be at that moment), is reset, so that a truncated stream never looks
 * complete.  Frees R. */
void  relay_close(struct relay *r, enum relay_close why, bool reset)
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
			if (reset || pending(x) || !r->side[!s].eof)
				relay_reset_fd(x->fd);
			close(x->fd);
		}
		if (x->out)
			evbuffer_free(x->out);
		if (x->pipe)
			pipe_put(set, x->pipe, false);
	}
	if (r->srv)
		upstream_srv_done(r->srv);
	o->cnt->closed[why]++;
	o->cnt->active--;
	TAILQ_REMOVE(&set->relays, r, entry);
	set->n--;
	free(r->hdr);
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

	/* the server went before its first byte: another may serve */
	if (s == UPSTREAM && !r->bytes[UPSTREAM] && relay_failover(r,
	    "reset before its first byte", err))
		return -1;
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
		relay_touch(r);	/* from now on the fin timeout */
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
			if (n < 0 && errno == EAGAIN) {
				x->wready = false;
				break;
			}
			return side_error(r, d, n < 0 ? errno : EPIPE);
		}
		if (!x->piped) {
			pipe_put(r->set, x->pipe, true);
			x->pipe = NULL;
		}
	} else if (x->out) {
		/* until empty or EAGAIN: one writev takes at most 128 of the
		 * buffer's chains, so falling short proves nothing */
		while (evbuffer_get_length(x->out)) {
			int w = evbuffer_write(x->out, x->fd);

			if (w > 0 || (w < 0 && errno == EINTR))
				continue;
			if (w < 0 && errno != EAGAIN)
				return side_error(r, d, errno);
			x->wready = false;
			break;
		}
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

	for (int i = 0; src->rready && !src->eof && !src->paused; i++) {
		size_t asked;
		ssize_t n;
		bool direct = side_ready(r, d) && !pending(dst);
		bool spliced = false;

		if (i == READS_PER_EVENT) {
			/* the others' turn; this one goes on next loop turn */
			event_active(&src->ev, EV_READ, 0);
			break;
		}
		if (dst->fd < 0) {
			/* nobody to deliver to: read and discard */
			asked = RELAY_READ_CHUNK;
			do
				n = read(src->fd, set->scratch, asked);
			while (n < 0 && errno == EINTR);
			if (n < 0)
				n = -errno;
		} else if (dst->pipe ||
			   (direct && splices(r, src) &&
			    (dst->pipe = pipe_get(set)))) {
			spliced = true;
			asked = dst->pipe->size - dst->piped;
			if (!asked) {
				src->paused = true;
				break;
			}
			n = pull_splice(r, s, asked);
			if (n == -EAGAIN && dst->piped) {
				/* the pipe is full (slots) or s is empty:
				 * which, the next read after d drained says */
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
				if (w < n) {
					dst->wready = false;
					if (queue(dst, set->scratch + w,
						  (size_t)(n - w)) < 0)
						n = -ENOMEM;
				}
			}
		} else {
			/* in bulk, wait for d to take what is queued and go
			 * on by splice */
			if (pending(dst) >= RELAY_HIGH_WATER ||
			    splices(r, src)) {
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
			if (spliced) {
				/* short, but the pipe's slots may have run
				 * out first: only EAGAIN says empty */
				if ((size_t)n < asked && (size_t)n < RELAY_SMALL)
					src->bulk = false;
				continue;
			}
			if ((size_t)n < asked && !src->rdhup) {
				src->rready = false;	/* the socket is empty */
				break;
			}
			src->bulk = true;	/* a full chunk */
			continue;
		}
		if (n == 0) {
			if (s == UPSTREAM && !r->bytes[UPSTREAM] &&
			    relay_failover(r, "closed before its first byte",
					   0))
				return -1;
			side_eof(r, s);
			break;
		}
		if (n == -EAGAIN) {
			src->rready = false;
			break;
		}
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
		relay_touch(r);
	return 0;
}

/* The upstream's first edge WHAT after connect(): writable without EV_READ
 * is connected; with EV_READ (an error, or bytes already) SO_ERROR says. */
static int on_connected(struct relay *r, short what)
{
	struct side *x = &r->side[UPSTREAM];
	int soerr = 0;

	if (what & EV_READ) {
		socklen_t len = sizeof(soerr);

		if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
	}
	if (soerr) {
		if (relay_failover(r, "connect", soerr) == 0)
			relay_close(r, RELAY_CLOSE_CONNECT_FAILED, true);
		return -1;
	}
	if (!(what & EV_WRITE))
		return 0;	/* not yet */
	r->connected = true;
	relay_touch(r);
	log_debug("ns %s: %s: connection %llu: upstream connected",
		  r->o->ns_name, r->o->svc->name, (unsigned long long)r->id);
	return 0;
}

/* After every event: resume what drained, pass FINs on, free a finished
 * connection, register a socket that changed (opened or gone). */
static void relay_settle(struct relay *r)
{
	for (int s = CLIENT; s <= UPSTREAM; s++) {
		struct side *src = &r->side[s], *dst = &r->side[!s];

		if (src->paused &&
		    (dst->fd < 0 || (dst->pipe ? !dst->piped :
				     splices(r, src) ? !pending(dst) :
				     pending(dst) < RELAY_HIGH_WATER / 2))) {
			src->paused = false;
			/* no edge comes for what it already has */
			if (src->rready && src->fd >= 0)
				event_active(&src->ev, EV_READ, 0);
		}
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
	relay_side_sync(r, CLIENT);
	relay_side_sync(r, UPSTREAM);
}

static void on_timeout(struct relay *r)
{
	struct timeval now, elapsed, limit;
	bool fin = r->side[CLIENT].eof || r->side[UPSTREAM].eof;

	if (!r->connected) {
		if (relay_failover(r, "connect timed out", 0) == 0)
			relay_close(r, RELAY_CLOSE_CONNECT_TIMEOUT, true);
		return;
	}
	event_base_gettimeofday_cached(r->set->base, &now);
	timersub(&now, &r->last, &elapsed);
	relay_ms_to_tv(limit_ms(r), &limit);
	if (!timercmp(&elapsed, &limit, <)) {
		relay_close(r, fin ? RELAY_CLOSE_FIN_TIMEOUT :
				     RELAY_CLOSE_IDLE_TIMEOUT, false);
		return;
	}
	timersub(&limit, &elapsed, &limit);	/* fired early */
	event_add(&r->side[CLIENT].ev, &limit);
}

void  relay_side_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	int s = fd >= 0 && fd == r->side[UPSTREAM].fd ? UPSTREAM : CLIENT;

	if (what & EV_TIMEOUT) {
		on_timeout(r);
		return;
	}
	if (r->side[s].fd < 0)
		return;
	if (what & EV_READ)
		r->side[s].rready = true;
	if (what & EV_CLOSED)
		r->side[s].rdhup = true;
	if (what & EV_WRITE)
		r->side[s].wready = true;
	if (s == UPSTREAM && !r->connected && on_connected(r, what) < 0)
		return;
	/* room first, then what the sockets have */
	for (int k = CLIENT; k <= UPSTREAM; k++)
		if (r->side[k].wready && side_ready(r, k) &&
		    pending(&r->side[k]) && push(r, k) < 0)
			return;
	for (int k = CLIENT; k <= UPSTREAM; k++)
		if (side_ready(r, k) && on_readable(r, k) < 0)
			return;
	relay_settle(r);
}
