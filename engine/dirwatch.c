/* SPDX-License-Identifier: MIT */
/* dirwatch: the namespace directory's changes, as `ip netns monitor` sees
 * them, turned into coalesced calls.
 *
 * inotify on the directory (netns/discover.c) reports names created,
 * deleted and moved.  The names are collected and handed over together:
 * the first change after a quiet period on the next loop turn, later ones
 * at most every DIRWATCH_MIN_MS.  Only those names are looked at (a stat
 * each), so a thousand namespaces appearing one by one cost O(N), not a
 * rescan of every served namespace per change.  A full rescan (a readdir
 * and a stat per served namespace) is asked for when the names are not
 * known: at start, after lost events, or after more than
 * DIRWATCH_MAX_NAMES names in one period.
 *
 * When the directory itself goes (rm -r, a tmpfs remounted) or is not
 * there at start, and the daemon cannot create it (it runs unprivileged),
 * a timer looks for it every RETRY_MS until it is back, then watches it
 * again and rescans.
 */
#include <errno.h>
#include <stdbool.h>
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
	dirwatch_cb changed;
	void *arg;
	char **names;			/* changed since the last call */
	size_t n;
	bool all;			/* rescan everything */
	int fd;
	struct event *io;
	struct event *timer;		/* coalescing, or waiting for dir */
	struct timeval last;		/* last rescan */
	int err;			/* logged failure to watch */
};

static void start(struct dirwatch *w);

static void forget_names(struct dirwatch *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->names[i]);
	w->n = 0;
}

/* One more changed name; past DIRWATCH_MAX_NAMES, rescan everything. */
static void add_name(void *arg, const char *name)
{
	struct dirwatch *w = arg;

	if (w->all)
		return;
	for (size_t i = w->n; i-- > 0;)
		if (strcmp(w->names[i], name) == 0)
			return;
	if (w->n == DIRWATCH_MAX_NAMES ||
	    !(w->names[w->n] = strdup(name))) {
		w->all = true;
		forget_names(w);
		return;
	}
	w->n++;
}

static void fire(struct dirwatch *w)
{
	bool all = w->all;
	size_t n = w->n;

	event_base_gettimeofday_cached(w->base, &w->last);
	w->all = false;
	w->n = 0;			/* the callback may change more */
	w->changed(w->arg, all ? NULL : w->names, all ? 0 : n);
	while (n)
		free(w->names[--n]);
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
	int r = discover_read(w->fd, add_name, w);

	if (r < 0) {
		log_warnx("reading %s events: %s", w->dir, strerror(-r));
		w->all = true;
	}
	if (r == DISCOVER_LOST)
		w->all = true;
	if (r == DISCOVER_GONE) {
		w->all = true;
		log_warnx("%s went away; waiting for it", w->dir);
		stop(w);
		/* known missing: start() says nothing more until it is
		 * back, and says so even if that is at once (made again
		 * before this event was read) */
		w->err = ENOENT;
		start(w);
		/* the names that were in it went with it: let their
		 * namespaces go now, not once the directory is back */
		fire(w);
		return;
	}
	if (r != DISCOVER_NONE)
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
	w->all = true;
	evtimer_del(w->timer);
	soon(w);
}

struct dirwatch *dirwatch_new(struct event_base *base, const char *dir,
			      dirwatch_cb changed, void *arg)
{
	struct dirwatch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->base = base;
	w->changed = changed;
	w->arg = arg;
	w->fd = -1;
	w->dir = strdup(dir);
	w->names = calloc(DIRWATCH_MAX_NAMES, sizeof(*w->names));
	w->timer = evtimer_new(base, timer_cb, w);
	if (!w->dir || !w->names || !w->timer) {
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
	if (w->names)
		forget_names(w);
	free(w->names);
	free(w->dir);
	free(w);
}
