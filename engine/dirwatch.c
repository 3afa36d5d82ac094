/* SPDX-License-Identifier: MIT */
/* dirwatch: the namespace directory's changes, as `ip netns monitor` sees
 * them, turned into coalesced rescans.
 *
 * inotify on the directory (netns/discover.c) reports names created,
 * deleted and moved.  A rescan costs a readdir and a stat per served
 * namespace, so changes are coalesced: the first change after a quiet
 * period is handled on the next loop turn, later ones at most every
 * DIRWATCH_MIN_MS.  When the directory itself goes (rm -r, a tmpfs
 * remounted) or is not there at start, and the daemon cannot create it
 * (it runs unprivileged), a timer looks for it every RETRY_MS until it is
 * back, then watches it again and rescans.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "engine/dirwatch.h"
#include "engine/log.h"
#include "netns/discover.h"

#define RETRY_MS	500

struct dirwatch {
	struct event_base *base;
	char *dir;
	void (*changed)(void *arg);
	void *arg;
	int fd;
	struct event *io;
	struct event *timer;		/* coalescing, or waiting for dir */
	struct timeval last;		/* last rescan */
	int err;			/* logged failure to watch */
};

static void start(struct dirwatch *w);

static void fire(struct dirwatch *w)
{
	event_base_gettimeofday_cached(w->base, &w->last);
	w->changed(w->arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dirwatch *w = arg;

	if (w->fd < 0) {
		start(w);
		return;
	}
	fire(w);
}

/* Rescan soon: next turn, or DIRWATCH_MIN_MS after the last rescan. */
static void soon(struct dirwatch *w)
{
	struct timeval now, since, tv = { 0, 0 };
	const struct timeval min = { 0, DIRWATCH_MIN_MS * 1000 };

	if (evtimer_pending(w->timer, NULL))
		return;
	event_base_gettimeofday_cached(w->base, &now);
	timersub(&now, &w->last, &since);
	if (timercmp(&since, &min, <))
		timersub(&min, &since, &tv);
	evtimer_add(w->timer, &tv);
}

static void stop(struct dirwatch *w)
{
	if (w->io) {
		event_free(w->io);
		w->io = NULL;
	}
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dirwatch *w = arg;
	int r = discover_read(w->fd);

	if (r < 0)
		log_warnx("reading %s events: %s", w->dir, strerror(-r));
	if (r == 2) {
		log_warnx("%s went away; waiting for it", w->dir);
		stop(w);
		w->err = 0;
		start(w);
		/* the names that were in it went with it: let their
		 * namespaces go now, not once the directory is back */
		fire(w);
		return;
	}
	if (r != 0)
		soon(w);
}

static void start(struct dirwatch *w)
{
	const struct timeval retry = { 0, RETRY_MS * 1000 };
	int fd = discover_open(w->dir);

	if (fd < 0) {
		if (-fd != w->err)
			log_warnx("cannot watch %s: %s; looking for it every "
				  "%d ms", w->dir, strerror(-fd), RETRY_MS);
		w->err = -fd;
		evtimer_add(w->timer, &retry);
		return;
	}
	w->io = event_new(w->base, fd, EV_READ | EV_PERSIST, io_cb, w);
	if (!w->io || event_add(w->io, NULL) < 0)
		fatalx("cannot watch %s", w->dir);
	w->fd = fd;
	if (w->err)
		log_info("watching %s again", w->dir);
	w->err = 0;
	/* what changed while nobody watched */
	evtimer_del(w->timer);
	soon(w);
}

struct dirwatch *dirwatch_new(struct event_base *base, const char *dir,
			      void (*changed)(void *arg), void *arg)
{
	struct dirwatch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->base = base;
	w->changed = changed;
	w->arg = arg;
	w->fd = -1;
	w->dir = strdup(dir);
	w->timer = evtimer_new(base, timer_cb, w);
	if (!w->dir || !w->timer) {
		dirwatch_free(w);
		return NULL;
	}
	start(w);
	return w;
}

int dirwatch_active(const struct dirwatch *w)
{
	return w->fd >= 0;
}

void dirwatch_free(struct dirwatch *w)
{
	if (!w)
		return;
	stop(w);
	if (w->timer)
		event_free(w->timer);
	free(w->dir);
	free(w);
}
