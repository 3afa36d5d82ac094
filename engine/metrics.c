/* SPDX-License-Identifier: MIT */
/* metrics: /metrics over HTTP (libevent's evhttp), Prometheus text format.
 *
 * Theory of operation
 *
 * An evhttp server on metrics.listen (a socket made here: CLOEXEC, non
 * blocking, SO_REUSEADDR) answers GET /metrics, and 404 for anything else.
 * The page is the Prometheus text exposition format 0.0.4 written by
 * stats.c: nsrelay_ prefix, HELP and TYPE lines, _total on counters,
 * labels namespace and service, the same numbers as the control socket's
 * JSON.
 *
 * With thousands of namespaces the page is megabytes, so it is built a piece
 * at a time: one stats_walk_step() of STEP_BUDGET bytes per loop turn (a
 * zero timeout re-armed), connections keep being relayed in between; then
 * sent whole.  At most SCRAPES_MAX pages are built at once (503 beyond:
 * Prometheus retries at its next interval), which bounds memory to that many
 * pages.  Requests are small (8 KiB of headers, no body) and a connection
 * idle for 30 s is closed.  A client that leaves while its page is built
 * costs nothing more: evhttp keeps the request until the reply, and drops
 * the reply.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config/config.h"
#include "engine/daemon.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/stats.h"

#define SCRAPES_MAX	4
#define STEP_BUDGET	(64 * 1024)	/* bytes per loop turn */
#define HTTP_TIMEOUT	30		/* seconds */

struct scrape {
	LIST_ENTRY(scrape) entry;
	uint64_t begun, work, longest;	/* us: for the debug line */
	unsigned steps;
	struct metrics *m;
	struct evhttp_request *req;
	struct stats_walk *walk;
	struct evbuffer *page;
	struct event *step;
};

struct metrics {
	struct daemon *d;
	struct evhttp *http;
	struct stats *stats;
	struct config_sockaddr addr;
	LIST_HEAD(, scrape) scrapes;
	unsigned n;
};

static void scrape_free(struct scrape *s)
{
	LIST_REMOVE(s, entry);
	s->m->n--;
	stats_walk_free(s->walk);
	if (s->step)
		event_free(s->step);
	if (s->page)
		evbuffer_free(s->page);
	free(s);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void scrape_step(evutil_socket_t fd, short what, void *arg)
{
	struct scrape *s = arg;
	struct evkeyvalq *h;
	uint64_t t0 = now_us(), t;
	int r;

	(void)fd;
	(void)what;
	r = stats_walk_step(s->walk, s->page, STEP_BUDGET);
	t = now_us() - t0;
	s->work += t;
	s->longest = t > s->longest ? t : s->longest;
	s->steps++;
	if (r == 0) {
		if (event_add(s->step, &(struct timeval){ 0, 0 }) == 0)
			return;
		r = -ENOMEM;
	}
	if (r < 0) {
		evhttp_send_error(s->req, HTTP_SERVUNAVAIL, "Out of memory");
	} else {
		h = evhttp_request_get_output_headers(s->req);
		evhttp_add_header(h, "Content-Type",
				  "text/plain; version=0.0.4; charset=utf-8");
		log_debug("metrics: page of %zu bytes in %u loop turns, "
			  "%llu us of work (longest turn %llu us), %llu us "
			  "from the request", evbuffer_get_length(s->page),
			  s->steps, (unsigned long long)s->work,
			  (unsigned long long)s->longest,
			  (unsigned long long)(now_us() - s->begun));
		evhttp_send_reply(s->req, HTTP_OK, "OK", s->page);
	}
	scrape_free(s);
}

static void scrape_ready(void *arg)
{
	struct scrape *s = arg;

	scrape_step(-1, 0, s);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	struct scrape *s;
	int err;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if (m->n >= SCRAPES_MAX) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Busy");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	s->m = m;
	s->req = req;
	s->begun = now_us();
	LIST_INSERT_HEAD(&m->scrapes, s, entry);
	m->n++;
	s->page = evbuffer_new();
	s->step = event_new(m->d->base, -1, 0, scrape_step, s);
	if (s->page && s->step)
		s->walk = stats_walk_new(m->stats, STATS_PROM, NULL, scrape_ready,
					 s, &err);
	if (!s->walk) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		scrape_free(s);
	}
}

static void on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, "Not Found: try /metrics");
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
	int fd;

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
	LIST_INIT(&m->scrapes);
	m->stats = stats_new(d);
	if (!m->stats) {
		free(m);
		return -ENOMEM;
	}
	fd = open_socket(&cm->listen);
	if (fd == -EADDRINUSE && *mp) {
		/* the old one may hold the port (0.0.0.0 -> 127.0.0.1) */
		metrics_close(*mp);
		*mp = NULL;
		fd = open_socket(&cm->listen);
	}
	if (fd < 0) {
		log_warnx("metrics: listening on %s: %s", cm->listen.text,
			  strerror(-fd));
		stats_free(m->stats);
		free(m);
		return fd;
	}
	m->http = evhttp_new(d->base);
	if (!m->http || !evhttp_accept_socket_with_handle(m->http, fd)) {
		log_warnx("metrics: out of memory");
		if (m->http)
			evhttp_free(m->http);
		close(fd);
		stats_free(m->stats);
		free(m);
		return -ENOMEM;
	}
	evhttp_set_timeout(m->http, HTTP_TIMEOUT);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 1024);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_cb(m->http, "/metrics", on_metrics, m);
	evhttp_set_gencb(m->http, on_other, m);
	log_info("metrics: serving http://%s/metrics", cm->listen.text);
	metrics_close(*mp);
	*mp = m;
	return 0;
}

void metrics_close(struct metrics *m)
{
	struct scrape *s;

	if (!m)
		return;
	/* complete the requests evhttp would otherwise free under us */
	while ((s = LIST_FIRST(&m->scrapes))) {
		evhttp_send_error(s->req, HTTP_SERVUNAVAIL, "Stopping");
		scrape_free(s);
	}
	evhttp_free(m->http);	/* closes the socket */
	stats_free(m->stats);
	free(m);
}
