/* SPDX-License-Identifier: MIT */
/* metrics: /metrics over HTTP/1.x in the Prometheus text format, within
 * fixed bounds of connections, descriptors, memory and time.
 *
 * Theory of operation
 *
 * A listening socket on metrics.listen (made here: CLOEXEC, non-blocking,
 * SO_REUSEADDR), accepted from by a loop of our own, and a small HTTP/1.x
 * responder on bufferevents: read the request head, judge it
 * (httpreq.c, a pure function), answer, close.  The page is the
 * Prometheus text exposition format 0.0.4 written by stats.c: nsrelay_
 * prefix, HELP and TYPE lines, _total on counters, labels namespace and
 * service, the same numbers as the control socket's JSON.  evhttp is not
 * used: libevent 2.1's has no cap on its connections, no error callback on
 * its listener (out of descriptors, accept fails at every loop turn: the
 * daemon spins) and sends a reply only whole, so a client that asks and
 * never reads would hold a whole page (8 MB at 4,000 namespaces).
 *
 * The bounds:
 *  - connections: at most CONNS_MAX at once; the next one is accepted,
 *    told 503 and closed at once, so that the kernel's backlog never fills
 *    with clients nobody will serve (at most ACCEPTS_MAX accepts per loop
 *    turn, the relay goes on in between);
 *  - descriptors: each connection is one descriptor of the budget the
 *    relay's connections see (listener_set_fd_take, not from the reserve);
 *    when the budget says no, the client is closed at once and a shortage
 *    begins, which pauses every listener of the daemon, this one too
 *    (listener_set_watch), until it ends.  accept() failing for want of
 *    descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) starts the
 *    same shortage; any other failure pauses this listener for a second:
 *    never an accept retried at once;
 *  - the request: a head of at most HTTPREQ_HEAD_MAX bytes (the input
 *    buffer's high-water mark: no more is read), complete within
 *    HEAD_TIMEOUT of the accept; nothing more is read until the answer
 *    has gone (the kernel holds what else the client sends);
 *  - the page is written a piece at a time as the client reads it: a
 *    stats_walk_step() of up to OUT_MAX bytes whenever less than half of
 *    that waits in the output, so a client that asks and never reads holds
 *    OUT_MAX bytes and the walk's snapshot of the namespace names, never
 *    the page; at most SCRAPES_MAX pages are being written at once (503
 *    beyond: Prometheus retries at its next interval);
 *  - the kernel's part: the socket's send buffer is set to OUT_MAX (the
 *    kernel makes it twice that), not left to grow, or the kernel would
 *    take up to tcp_wmem's 4 MiB of the page from us for a client that
 *    reads nothing, and keep it after the close;
 *  - time: a client whose output does not move for IO_TIMEOUT is dropped
 *    (with a reset, which frees what the kernel holds for it), and any
 *    connection LIFE_MAX after its request (a reader slow on purpose holds
 *    a page's slot no longer).
 * So the endpoint holds at most CONNS_MAX descriptors and, besides its
 * structures, CONNS_MAX heads and SCRAPES_MAX * (OUT_MAX + names): about
 * 1 MiB at 4,000 namespaces, whatever its clients do; the kernel at most
 * 2 * OUT_MAX per connection.
 *
 * The answer is HTTP/1.1 with Connection: close; the page's body ends when
 * the connection does (what Prometheus and HTTP/1.0 clients take).  Once
 * the answer is in the kernel, the sending side is shut down and what the
 * client still sends is read and dropped until it closes, so that a request
 * it sent more of (a body, a pipelined request) does not turn the close
 * into a reset that could cut the answer short.  Every LINGER_S the kernel
 * is asked what it still has to send (SIOCOUTQ): nothing, and the client
 * has it all: closed; unchanged for IO_TIMEOUT, or LIFE_MAX reached: a
 * reset, as above.  A page that cannot be finished (out of memory, a
 * timeout, a reload that moves the endpoint, the daemon stopping) ends
 * with a reset, so the client never takes half a page for a whole one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config/config.h"
#include "engine/daemon.h"
#include "engine/httpreq.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/stats.h"

/* Prometheus keeps one connection per scrape (two for an HA pair), an admin
 * adds a curl: 16 leaves room for them and for a scrape that overlaps the
 * previous one, and bounds what strangers who reach the port can hold. */
#define CONNS_MAX	16
#define SCRAPES_MAX	4
#define OUT_MAX		(64 * 1024)	/* bytes of the page waiting, at most */
#define ACCEPTS_MAX	16		/* per loop turn */
#define HEAD_TIMEOUT	10		/* s, from the accept */
#define IO_TIMEOUT	30		/* s without the output moving */
#define LIFE_MAX	120		/* s, from the request */
#define LINGER_S	2		/* s between looks at the kernel's queue */
#define ERR_PAUSE_S	1		/* after an unexpected accept error */
#define REFUSED_LOG_S	10		/* one line about refusals, at most */

enum conn_state {
	C_HEAD,		/* reading the request head */
	C_PAGE,		/* writing the page as the client reads it */
	C_FLUSH,	/* the answer is complete: until it has gone */
	C_LINGER,	/* sending side shut: until the client has it all */
};

struct conn {
	LIST_ENTRY(conn) entry;
	struct metrics *m;
	struct bufferevent *bev;
	struct event *timer;		/* the deadline of the state */
	enum conn_state state;
	uint64_t life_end;		/* us: LIFE_MAX after the request */
	int outq;			/* C_LINGER: the kernel's queue ... */
	unsigned still;			/* ... and looks it has not moved */
	struct stats_walk *walk;	/* C_PAGE: the page (a scrape slot) */
	bool walk_ready;		/* ... which may be stepped */
	/* for the debug line at the end of a page */
	uint64_t begun, work, longest, bytes;	/* us, us, us, bytes */
	unsigned steps;
};

struct metrics {
	struct daemon *d;
	struct stats *stats;
	struct config_sockaddr addr;
	int fd;				/* listening socket, -1 if none */
	struct event *accept_ev;
	struct event *err_timer;	/* resume after an accept error */
	struct listener_watch *watch;	/* paused under a shortage */
	bool short_paused, err_paused;
	bool enabled;			/* accept_ev added */
	LIST_HEAD(, conn) conns;
	unsigned n, scrapes;		/* connections; pages being written */
	uint64_t refused;		/* beyond CONNS_MAX, since the log */
	time_t refused_logged;
};

#define BUSY_BODY	"503 Service Unavailable: too many clients\n"
static const char busy_reply[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 42\r\n"
	"Connection: close\r\n"
	"\r\n"
	BUSY_BODY;
_Static_assert(sizeof(BUSY_BODY) - 1 == 42, "Content-Length of BUSY_BODY");

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- connections ----------------------------------------------------- */

/* Close C and give its descriptor back; with RESET the client gets a
 * reset, not a FIN (the answer was cut). */
static void conn_free(struct conn *c, bool reset)
{
	struct metrics *m = c->m;
	struct linger lin = { 1, 0 };

	if (reset)
		(void)setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET,
				 SO_LINGER, &lin, sizeof(lin));
	if (c->walk) {
		stats_walk_free(c->walk);
		m->scrapes--;
	}
	LIST_REMOVE(c, entry);
	m->n--;
	event_free(c->timer);
	bufferevent_free(c->bev);	/* closes the socket */
	listener_set_fd_put(m->d->ls, 1);
	free(c);
}

static void conn_deadline(struct conn *c, long secs)
{
	struct timeval tv = { secs, 0 };

	if (evtimer_add(c->timer, &tv) < 0)
		log_warnx("metrics: cannot arm a timer: out of memory");
}

/* The Date field (RFC 9110: an origin server with a clock sends one). */
static void add_date(struct evbuffer *out)
{
	char date[64];
	time_t t = time(NULL);
	struct tm tm;

	if (gmtime_r(&t, &tm) &&
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm))
		evbuffer_add_printf(out, "Date: %s\r\n", date);
}

/* The status line and fields of STATUS; the body, unless HEAD. */
static void reply_error(struct conn *c, int status, bool head,
			const char *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status,
			    httpreq_reason(status));
	add_date(out);
	evbuffer_add_printf(out, "Content-Type: text/plain; charset=utf-8\r\n"
			    "Content-Length: %zu\r\n%s"
			    "Connection: close\r\n\r\n", strlen(body),
			    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head)
		evbuffer_add(out, body, strlen(body));
}

static void reply_ok(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\n");
	add_date(out);
	evbuffer_add_printf(out, "Content-Type: text/plain; version=0.0.4; "
			    "charset=utf-8\r\nConnection: close\r\n\r\n");
}

/* Bytes the kernel still has to send (or have acknowledged) on C's
 * socket; 0 on an error (nothing can be done for them). */
static int conn_outq(const struct conn *c)
{
	int n = 0;

	if (ioctl(bufferevent_getfd(c->bev), SIOCOUTQ, &n) < 0)
		return 0;
	return n;
}

/* Everything is in the kernel: shut the sending side, and read what the
 * client still sends until it closes or has everything. */
static void conn_linger(struct conn *c)
{
	if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) < 0) {
		conn_free(c, false);
		return;
	}
	c->state = C_LINGER;
	c->outq = conn_outq(c);
	c->still = 0;
	bufferevent_enable(c->bev, EV_READ);
	conn_deadline(c, LINGER_S);
}

/* C_LINGER, every LINGER_S: close once the client has everything, reset
 * if it stopped taking it or its time is up. */
static void conn_linger_tick(struct conn *c)
{
	int q = conn_outq(c);

	if (!q) {
		conn_free(c, false);
		return;
	}
	c->still = q < c->outq ? 0 : c->still + 1;
	c->outq = q;
	if (c->still * LINGER_S >= IO_TIMEOUT || now_us() >= c->life_end) {
		log_debug("metrics: an answer not read: dropped");
		conn_free(c, true);
		return;
	}
	conn_deadline(c, LINGER_S);
}

/* The answer is complete in the output: linger once it has gone. */
static void conn_flush(struct conn *c)
{
	c->state = C_FLUSH;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (!evbuffer_get_length(bufferevent_get_output(c->bev)))
		conn_linger(c);
}

/* Write the next piece of the page, if less than half of OUT_MAX waits;
 * at its end, flush. */
static void conn_step(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = evbuffer_get_length(out);
	uint64_t t0, t;
	int r;

	if (!c->walk || !c->walk_ready || len > OUT_MAX / 2)
		return;
	t0 = now_us();
	r = stats_walk_step(c->walk, out, OUT_MAX - len);
	t = now_us() - t0;
	c->work += t;
	c->longest = t > c->longest ? t : c->longest;
	c->steps++;
	c->bytes += evbuffer_get_length(out) - len;
	if (r == 0)
		return;		/* more once this is read */
	if (r < 0) {
		log_warnx("metrics: out of memory writing a page; the "
			  "scrape is cut");
		conn_free(c, true);
		return;
	}
	log_debug("metrics: page of %llu bytes in %u steps, %llu us of work "
		  "(longest step %llu us), %llu us from the request",
		  (unsigned long long)c->bytes, c->steps,
		  (unsigned long long)c->work, (unsigned long long)c->longest,
		  (unsigned long long)(now_us() - c->begun));
	stats_walk_free(c->walk);
	c->walk = NULL;
	c->m->scrapes--;
	conn_flush(c);
}

static void walk_ready(void *arg)
{
	struct conn *c = arg;

	c->walk_ready = true;
	conn_step(c);
}

/* What the body of an error STATUS of httpreq_parse() says. */
static const char *error_body(int status)
{
	switch (status) {
	case 404: return "404 Not Found: try /metrics\n";
	case 405: return "405 Method Not Allowed: GET or HEAD\n";
	case 431: return "431 Request Header Fields Too Large: 8 KiB at most\n";
	case 505: return "505 HTTP Version Not Supported: HTTP/1.x\n";
	default: return "400 Bad Request\n";
	}
}

/* Answer a judged request: STATUS from httpreq_parse(). */
static void conn_answer(struct conn *c, int status, const struct httpreq *req)
{
	struct metrics *m = c->m;
	int err;

	conn_deadline(c, LIFE_MAX);
	c->life_end = now_us() + (uint64_t)LIFE_MAX * 1000000;
	if (status != 200) {
		log_debug("metrics: a request answered %d %s", status,
			  httpreq_reason(status));
		reply_error(c, status, status == 404 && req->head,
			    error_body(status));
		conn_flush(c);
		return;
	}
	if (req->head) {
		reply_ok(c);
		conn_flush(c);
		return;
	}
	if (m->scrapes >= SCRAPES_MAX) {
		reply_error(c, 503, false, "503 Service Unavailable: pages "
			    "are being written for others; try again\n");
		conn_flush(c);
		return;
	}
	c->walk = stats_walk_new(m->stats, STATS_PROM, NULL, walk_ready, c,
				 &err);
	if (!c->walk) {
		reply_error(c, 503, false, "503 Service Unavailable: out of "
			    "memory\n");
		conn_flush(c);
		return;
	}
	m->scrapes++;
	c->state = C_PAGE;
	c->begun = now_us();
	reply_ok(c);
	/* the next piece once the output is down to half */
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_MAX / 2, 0);
}

/* C_HEAD: judge what came; answer once an answer is due. */
static void conn_head(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in);
	size_t n = len < HTTPREQ_HEAD_MAX ? len : HTTPREQ_HEAD_MAX;
	struct httpreq req;
	const char *head;
	int status;

	head = (const char *)evbuffer_pullup(in, (ssize_t)n);
	if (!head && n) {
		conn_free(c, true);
		return;
	}
	status = httpreq_parse(head, n, &req);
	if (!status)
		return;		/* read more (at most the bound) */
	/* what follows the head is not needed: read no more */
	evbuffer_drain(in, len);
	bufferevent_disable(c->bev, EV_READ);
	conn_answer(c, status, &req);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_HEAD)
		conn_head(c);
	else	/* C_LINGER: dropped */
		evbuffer_drain(bufferevent_get_input(bev),
			       evbuffer_get_length(bufferevent_get_input(bev)));
}

static void conn_written(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_PAGE)
		conn_step(c);
	else if (c->state == C_FLUSH &&
		 !evbuffer_get_length(bufferevent_get_output(bev)))
		conn_linger(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (what & BEV_EVENT_TIMEOUT)
		log_debug("metrics: a client that read nothing for %d s "
			  "dropped", IO_TIMEOUT);
	/* EOF: the client left (or closed after the answer); else an error
	 * or the write timeout */
	conn_free(c, !(what & BEV_EVENT_EOF));
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	switch (c->state) {
	case C_HEAD:
		log_debug("metrics: no request within %d s: closed",
			  HEAD_TIMEOUT);
		conn_free(c, false);
		break;
	case C_PAGE:
	case C_FLUSH:
		log_debug("metrics: an answer not read within %d s: dropped",
			  LIFE_MAX);
		conn_free(c, true);
		break;
	case C_LINGER:
		conn_linger_tick(c);
		break;
	}
}

/* A client on FD, its descriptor taken from the budget: serve it. */
static void conn_new(struct metrics *m, int fd)
{
	struct timeval io = { IO_TIMEOUT, 0 };
	struct conn *c = calloc(1, sizeof(*c));
	int sndbuf = OUT_MAX;

	if (!c)
		goto fail;
	/* a fixed send buffer: what the kernel holds for a client is
	 * bounded too (a failure only leaves it to the kernel) */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	c->m = m;
	c->bev = bufferevent_socket_new(m->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		goto fail;
	c->timer = evtimer_new(m->d->base, conn_timer, c);
	if (!c->timer) {
		bufferevent_free(c->bev);	/* closes FD */
		fd = -1;
		goto fail;
	}
	LIST_INSERT_HEAD(&m->conns, c, entry);
	m->n++;
	bufferevent_setcb(c->bev, conn_read, conn_written, conn_event, c);
	/* the write timeout runs while output waits: "does not move" */
	bufferevent_set_timeouts(c->bev, NULL, &io);
	bufferevent_setwatermark(c->bev, EV_READ, 0, HTTPREQ_HEAD_MAX);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_deadline(c, HEAD_TIMEOUT);
	return;
fail:
	log_warnx("metrics: a client refused: out of memory");
	if (fd >= 0)
		close(fd);
	free(c);
	listener_set_fd_put(m->d->ls, 1);
}

/* ---- the listening socket --------------------------------------------- */

/* Accept while neither a shortage nor an error pauses the socket. */
static void accept_update(struct metrics *m)
{
	bool want = !m->short_paused && !m->err_paused && m->accept_ev;

	if (want == m->enabled)
		return;
	if (want ? event_add(m->accept_ev, NULL) == 0 :
		   event_del(m->accept_ev) == 0)
		m->enabled = want;
}

static void metrics_paused(void *arg, bool paused)
{
	struct metrics *m = arg;

	m->short_paused = paused;
	accept_update(m);
}

static void err_resume(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;

	m->err_paused = false;
	accept_update(m);
}

/* Pause accepting for ERR_PAUSE_S. */
static void err_pause(struct metrics *m)
{
	struct timeval tv = { ERR_PAUSE_S, 0 };

	m->err_paused = true;
	accept_update(m);
	if (evtimer_add(m->err_timer, &tv) < 0)
		err_resume(-1, 0, m);	/* better than paused for ever */
}

/* A client beyond the bounds on FD: told 503 (a fresh socket's buffer
 * takes it whole) and closed.  CAP: refused for CONNS_MAX, counted for an
 * occasional log line (a shortage logs itself). */
static void refuse(struct metrics *m, int fd, bool cap)
{
	time_t now = time(NULL);

	if (write(fd, busy_reply, sizeof(busy_reply) - 1) < 0)
		log_debug("metrics: refusing a client: %s", strerror(errno));
	close(fd);
	if (!cap)
		return;
	m->refused++;
	if (now - m->refused_logged >= REFUSED_LOG_S) {
		log_warnx("metrics: %u connections at once at most: %llu "
			  "refused since the last report", CONNS_MAX,
			  (unsigned long long)m->refused);
		m->refused = 0;
		m->refused_logged = now;
	}
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct metrics *m = arg;
	int fd, err;

	for (unsigned i = 0; i < ACCEPTS_MAX && m->enabled; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			switch (err) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			/* that client is gone, or a network error of its
			 * (accept(2)): the next one */
			case EINTR: case ECONNABORTED: case EPROTO:
			case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
			case ENONET: case EHOSTUNREACH: case EOPNOTSUPP:
			case ENETUNREACH: case EPERM:
				continue;
			case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
				listener_set_shortage(m->d->ls, err);
				/* paused by the watch; if a shortage was on
				 * already, by ourselves */
				if (m->enabled)
					err_pause(m);
				return;
			default:
				log_warnx("metrics: accept: %s; paused for "
					  "%d s", strerror(err), ERR_PAUSE_S);
				err_pause(m);
				return;
			}
		}
		if (m->n >= CONNS_MAX)
			refuse(m, fd, true);
		else if (!listener_set_fd_take(m->d->ls, 1, false))
			refuse(m, fd, false);	/* a shortage began */
		else
			conn_new(m, fd);
	}
}

static int open_socket(const struct config_sockaddr *a)
{
	int fd, one = 1, r;

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (a->sa.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0 ||
	    listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static bool same_addr(const struct config_sockaddr *a,
		      const struct config_sockaddr *b)
{
	return strcmp(a->text, b->text) == 0;
}

int metrics_open(struct daemon *d, struct metrics **mp)
{
	const struct config_metrics *cm = &d->cfg->metrics;
	struct metrics *m;
	int r;

	if (*mp && cm->enabled && same_addr(&(*mp)->addr, &cm->listen))
		return 0;
	if (!cm->enabled) {
		metrics_close(*mp);
		*mp = NULL;
		return 0;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->d = d;
	m->addr = cm->listen;
	m->fd = -1;
	LIST_INIT(&m->conns);
	m->stats = stats_new(d);
	if (!m->stats) {
		r = -ENOMEM;
		goto fail;
	}
	m->fd = open_socket(&cm->listen);
	if (m->fd == -EADDRINUSE && *mp) {
		/* the old one may hold the port (0.0.0.0 -> 127.0.0.1) */
		metrics_close(*mp);
		*mp = NULL;
		m->fd = open_socket(&cm->listen);
	}
	if (m->fd < 0) {
		r = m->fd;
		log_warnx("metrics: listening on %s: %s", cm->listen.text,
			  strerror(-r));
		goto fail;
	}
	m->accept_ev = event_new(d->base, m->fd, EV_READ | EV_PERSIST,
				 accept_cb, m);
	m->err_timer = evtimer_new(d->base, err_resume, m);
	if (!m->accept_ev || !m->err_timer) {
		r = -ENOMEM;
		goto nomem;
	}
	accept_update(m);
	/* then paused at once if a shortage is on */
	if (!m->enabled ||
	    !(m->watch = listener_set_watch(d->ls, metrics_paused, m))) {
		r = -ENOMEM;
		goto nomem;
	}
	log_info("metrics: serving http://%s/metrics", cm->listen.text);
	metrics_close(*mp);
	*mp = m;
	return 0;
nomem:
	log_warnx("metrics: out of memory");
fail:
	metrics_close(m);
	return r;
}

void metrics_close(struct metrics *m)
{
	struct conn *c;

	if (!m)
		return;
	/* pages being written are cut: a reset, not a page that looks
	 * whole */
	while ((c = LIST_FIRST(&m->conns)))
		conn_free(c, true);
	listener_watch_free(m->watch);
	if (m->accept_ev)
		event_free(m->accept_ev);
	if (m->err_timer)
		event_free(m->err_timer);
	if (m->fd >= 0)
		close(m->fd);
	stats_free(m->stats);
	free(m);
}
