/* SPDX-License-Identifier: MIT */
/* listener: namespaces served, and their listening sockets.
 *
 * Theory of operation
 *
 * ns_sync() turns the config and the namespace directory into a list of
 * struct ns, each with one struct binding per (service, listen address)
 * that applies to it.  A binding is WAITING (the namespace is missing, or
 * its file is not yet a namespace: `ip netns add` creates the file before
 * it mounts the namespace on it), RETRY (socket, bind or listen failed, for
 * instance a user squats the port first) or LISTENING.  Failures are logged
 * once per distinct error and retried on the binding's timer with an
 * exponential backoff from 25 ms capped by bind_retry_max; ns_sync() retries at once.
 *
 * The listening socket is made inside the namespace by netns_socket(), then
 * bound and listened to from the host (a socket keeps the namespace it was
 * made in) and handed to an evconnlistener.  IP_FREEBIND lets it bind before
 * the namespace's lo is up.  Deferred accept is never used: MySQL, SMTP and
 * IMAP speak first, so a client may never send a byte on its own.
 *
 * Two guards keep one listener or one shortage from hurting the rest:
 *  - fairness: after ACCEPT_BURST accepts in one loop turn a listener is
 *    disabled and re-enabled by a zero timer, after the other ready events;
 *  - descriptor shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM): libevent's
 *    listener would retry accept() at once forever.  The error callback
 *    disables every listener and a timer resumes them, backing off from
 *    100 ms to 1 s while the shortage lasts; one log line a second at most.
 *
 * A binding is referenced by its namespace and by each live connection, so
 * closing a listener (namespace gone, shutdown) never cuts a connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config/config.h"
#include "engine/daemon.h"
#include "engine/hosts.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "netns/netns.h"

#define ACCEPT_BURST		16
#define RETRY_MIN_MS		25
#define FD_PAUSE_MIN_MS		100
#define FD_PAUSE_MAX_MS		1000

static void binding_try(struct binding *b);

static void ms_to_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void binding_free(struct binding *b)
{
	event_free(b->timer);
	free(b->ns_name);
	free(b);
}

void binding_unref(struct binding *b)
{
	if (--b->refs == 0)
		binding_free(b);
}

static void binding_close(struct binding *b)
{
	if (b->lev) {
		evconnlistener_free(b->lev);
		b->lev = NULL;
		b->d->nlisteners--;
	}
	b->burst_paused = false;
	evtimer_del(b->timer);
	b->state = BINDING_WAITING;
}

static void binding_schedule(struct binding *b)
{
	struct timeval tv;
	uint64_t max = b->d->cfg->retry_max_ms;

	b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : RETRY_MIN_MS;
	if (b->backoff_ms > max)
		b->backoff_ms = max;
	ms_to_tv(b->backoff_ms, &tv);
	evtimer_add(b->timer, &tv);
}

/* A failed attempt: log when the error is new, then back off. */
static void binding_fail(struct binding *b, enum binding_state state,
			 const char *what, int err)
{
	const char *why = err == EAGAIN ? "not a network namespace (yet)" :
					  strerror(err);
	bool fresh = err != b->last_err;

	/* `ip netns add` mounts the namespace just after creating the
	 * file: only say so if it does not settle within a second */
	if (err == EAGAIN && b->backoff_ms < 1000) {
		b->state = state;
		binding_schedule(b);
		return;
	}

	/* a namespace problem is the namespace's: say it once, not once
	 * per listener */
	if (state == BINDING_WAITING && b->ns) {
		fresh = err != b->ns->last_err;
		b->ns->last_err = err;
	}
	if (fresh && state == BINDING_WAITING)
		log_warnx("ns %s: %s: %s; retrying", b->ns_name, what, why);
	else if (fresh)
		log_warnx("ns %s: %s %s: %s: %s; retrying", b->ns_name,
			  b->svc->name, b->addr->text, what, why);
	else
		log_debug("ns %s: %s %s: %s: %s; retrying", b->ns_name,
			  b->svc->name, b->addr->text, what, why);
	b->last_err = err;
	b->state = state;
	binding_schedule(b);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int len, void *arg)
{
	struct binding *b = arg;
	struct timeval now;

	event_base_gettimeofday_cached(b->d->base, &now);
	if (timercmp(&now, &b->turn, !=)) {
		b->turn = now;
		b->turn_accepts = 0;
	}
	if (++b->turn_accepts >= ACCEPT_BURST) {
		static const struct timeval zero = { 0, 0 };

		evconnlistener_disable(lev);
		b->burst_paused = true;
		evtimer_add(b->timer, &zero);
	}
	relay_start(b, fd, sa, len);
}

static bool fd_shortage(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	       err == ENOMEM;
}

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct binding *b = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 1, 0 };

	if (fd_shortage(err)) {
		listeners_fd_pressure(b->d, err);
		return;
	}
	/* anything else: this listener only, once a second at most */
	log_warnx("ns %s: %s %s: accept: %s", b->ns_name, b->svc->name,
		  b->addr->text, strerror(err));
	evconnlistener_disable(lev);
	b->burst_paused = true;
	evtimer_add(b->timer, &tv);
}

static void foreach_listening(struct daemon *d, bool enable)
{
	struct binding *b;
	struct ns *ns;

	TAILQ_FOREACH(ns, &d->nss, entry)
		TAILQ_FOREACH(b, &ns->bindings, entry) {
			if (!b->lev || b->burst_paused)
				continue;
			if (enable)
				evconnlistener_enable(b->lev);
			else
				evconnlistener_disable(b->lev);
		}
}

static void fd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	d->fd_paused = false;
	foreach_listening(d, true);
}

void listeners_fd_pressure(struct daemon *d, int err)
{
	struct timeval now, tv;

	d->fd_failures++;
	event_base_gettimeofday_cached(d->base, &now);
	if (!d->fd_timer) {
		d->fd_timer = evtimer_new(d->base, fd_timer_cb, d);
		if (!d->fd_timer)
			fatal("evtimer_new");
	}
	if (now.tv_sec - d->fd_reported.tv_sec >= 1) {
		log_warnx("out of file descriptors (%s; limit %ld): accepting "
			  "paused, %llu connections waiting or dropped since "
			  "the last report", strerror(err), d->fd_limit,
			  (unsigned long long)d->fd_failures);
		d->fd_failures = 0;
		/* a shortage that outlived a report: back off further */
		d->fd_pause_ms = d->fd_reported.tv_sec &&
				 now.tv_sec - d->fd_reported.tv_sec < 3 ?
				 FD_PAUSE_MAX_MS : FD_PAUSE_MIN_MS;
		d->fd_reported = now;
	}
	if (d->fd_paused)
		return;
	d->fd_paused = true;
	foreach_listening(d, false);
	ms_to_tv(d->fd_pause_ms ? d->fd_pause_ms : FD_PAUSE_MIN_MS, &tv);
	evtimer_add(d->fd_timer, &tv);
}

static int set_opt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

/* Create, bind and listen; returns the fd or -errno, with *what naming the
 * step that failed. */
static int listen_socket(struct binding *b, int nsfd, const char **what)
{
	const struct config_sockaddr *a = b->addr;
	int family = a->sa.ss_family, fd, r;

	*what = "socket";
	fd = netns_socket(nsfd, family, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	*what = "setsockopt";
	if (set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0 ||
	    (family == AF_INET && set_opt(fd, SOL_IP, IP_FREEBIND, 1) < 0) ||
	    (family == AF_INET6 &&
	     (set_opt(fd, SOL_IPV6, IPV6_V6ONLY, 1) < 0 ||
	      set_opt(fd, SOL_IPV6, IPV6_FREEBIND, 1) < 0)))
		goto fail;
	*what = "bind";
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) < 0)
		goto fail;
	*what = "listen";
	if (listen(fd, SOMAXCONN) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

static void binding_try(struct binding *b)
{
	struct daemon *d = b->d;
	struct ns *ns = b->ns;
	const char *what;
	struct netns_id id;
	char where[512];
	int nsfd, fd;

	if (b->state == BINDING_LISTENING)
		return;
	if (d->nlisteners + 16 >= (unsigned long)d->fd_limit) {
		binding_fail(b, BINDING_RETRY, "file descriptor limit reached",
			     EMFILE);
		return;
	}
	nsfd = netns_open(d->cfg->netns_dir, ns->name, &id);
	if (nsfd < 0) {
		snprintf(where, sizeof(where), "namespace %s/%s",
			 d->cfg->netns_dir, ns->name);
		binding_fail(b, BINDING_WAITING, where, -nsfd);
		return;
	}
	if (!ns->have_id || !netns_id_eq(&ns->id, &id)) {
		/* first listener of this namespace, or a new namespace under
		 * the old name: the other listeners must follow */
		static const struct timeval zero = { 0, 0 };
		struct binding *o;

		TAILQ_FOREACH(o, &ns->bindings, entry)
			if (o->state == BINDING_LISTENING) {
				binding_close(o);
				o->backoff_ms = 0;
				evtimer_add(o->timer, &zero);
			}
		ns->id = id;
		ns->have_id = true;
	}
	fd = listen_socket(b, nsfd, &what);
	close(nsfd);
	if (fd < 0) {
		binding_fail(b, BINDING_RETRY, what, -fd);
		return;
	}
	b->lev = evconnlistener_new(d->base, accept_cb, b,
				    LEV_OPT_CLOSE_ON_FREE |
				    LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!b->lev) {
		close(fd);
		binding_fail(b, BINDING_RETRY, "evconnlistener_new", ENOMEM);
		return;
	}
	evconnlistener_set_error_cb(b->lev, accept_error_cb);
	if (d->fd_paused)
		evconnlistener_disable(b->lev);
	d->nlisteners++;
	b->state = BINDING_LISTENING;
	b->backoff_ms = 0;
	b->last_err = 0;
	ns->last_err = 0;
	log_info("ns %s: %s: listening on %s", ns->name, b->svc->name,
		 b->addr->text);
}

static void binding_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct binding *b = arg;

	if (b->state != BINDING_LISTENING) {
		binding_try(b);
		return;
	}
	b->burst_paused = false;
	if (!b->d->fd_paused)
		evconnlistener_enable(b->lev);
}

static struct ns *ns_new(struct daemon *d, const char *name)
{
	const struct config *cfg = d->cfg;
	struct binding *b;
	struct ns *ns;

	ns = calloc(1, sizeof(*ns));
	if (!ns || !(ns->name = strdup(name)))
		fatal("ns_new");
	TAILQ_INIT(&ns->bindings);
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *svc = &cfg->services[i];

		if (!config_service_in_ns(svc, name))
			continue;
		for (size_t j = 0; j < svc->n_listen; j++) {
			b = calloc(1, sizeof(*b));
			if (!b || !(b->ns_name = strdup(name)))
				fatal("ns_new");
			b->timer = evtimer_new(d->base, binding_timer_cb, b);
			if (!b->timer)
				fatal("evtimer_new");
			b->d = d;
			b->ns = ns;
			b->svc = svc;
			b->addr = &svc->listen[j];
			b->refs = 1;
			TAILQ_INSERT_TAIL(&ns->bindings, b, entry);
		}
	}
	TAILQ_INSERT_TAIL(&d->nss, ns, entry);
	return ns;
}

static void ns_free(struct daemon *d, struct ns *ns)
{
	struct binding *b;

	while ((b = TAILQ_FIRST(&ns->bindings))) {
		TAILQ_REMOVE(&ns->bindings, b, entry);
		binding_close(b);
		b->ns = NULL;
		binding_unref(b);
	}
	TAILQ_REMOVE(&d->nss, ns, entry);
	free(ns->name);
	free(ns);
}

static struct ns *ns_find(struct daemon *d, const char *name)
{
	struct ns *ns;

	TAILQ_FOREACH(ns, &d->nss, entry)
		if (strcmp(ns->name, name) == 0)
			return ns;
	return NULL;
}

static void ns_want(struct daemon *d, const char *name)
{
	struct ns *ns = ns_find(d, name);

	if (!ns)
		ns = ns_new(d, name);
	ns->wanted = true;
}

/* A served namespace whose file vanished or now holds another namespace:
 * close its listeners (a listener would keep a deleted namespace alive). */
static void ns_check(struct daemon *d, struct ns *ns)
{
	struct netns_id id;
	struct binding *b;
	int r;

	if (!ns->have_id)
		return;
	r = netns_stat(d->cfg->netns_dir, ns->name, &id);
	if (r == 0 && netns_id_eq(&id, &ns->id))
		return;
	log_info("ns %s: namespace %s; closing its listeners", ns->name,
		 r == 0 ? "re-created" : "gone");
	TAILQ_FOREACH(b, &ns->bindings, entry)
		binding_close(b);
	ns->have_id = false;
}

void ns_sync(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	struct ns *ns, *next;
	struct binding *b;
	char **names = NULL;
	int n = 0;

	TAILQ_FOREACH(ns, &d->nss, entry)
		ns->wanted = false;
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		ns_want(d, cfg->namespaces[i]);
	provisioned_each_ns(d, ns_want);
	if (cfg->ns_all) {
		n = netns_list(cfg->netns_dir, &names);
		if (n < 0) {
			if (n != -ENOENT)
				log_warnx("cannot list %s: %s", cfg->netns_dir,
					  strerror(-n));
			n = 0;
		}
		for (int i = 0; i < n; i++)
			if (config_serves_ns(cfg, names[i]))
				ns_want(d, names[i]);
		netns_names_free(names, n);
	}
	for (ns = TAILQ_FIRST(&d->nss); ns; ns = next) {
		next = TAILQ_NEXT(ns, entry);
		if (!ns->wanted) {
			log_info("ns %s: namespace gone; closing its listeners",
				 ns->name);
			ns_free(d, ns);
			continue;
		}
		ns_check(d, ns);
		TAILQ_FOREACH(b, &ns->bindings, entry) {
			if (b->state == BINDING_LISTENING)
				continue;
			evtimer_del(b->timer);
			b->backoff_ms = 0;
			binding_try(b);
		}
	}
}

unsigned ns_count_bindings(const struct daemon *d)
{
	const struct binding *b;
	const struct ns *ns;
	unsigned n = 0;

	TAILQ_FOREACH(ns, &d->nss, entry)
		TAILQ_FOREACH(b, &ns->bindings, entry)
			n++;
	return n;
}

void ns_free_all(struct daemon *d)
{
	struct ns *ns;

	while ((ns = TAILQ_FIRST(&d->nss)))
		ns_free(d, ns);
	if (d->fd_timer) {
		event_free(d->fd_timer);
		d->fd_timer = NULL;
	}
}
