/* SPDX-License-Identifier: MIT */
/* discover: inotify on the namespace directory.
 *
 * Only names are watched; what a name holds is checked by the caller
 * (netns_open()), because `ip netns add` is not atomic: it creates an empty
 * file, which fires IN_CREATE, and mounts the namespace on it afterwards,
 * which fires nothing.  The caller retries a file that is not yet a
 * namespace with a short backoff.  Names are passed on, so the caller can
 * look at those alone.  An overflowed queue loses events, so it is
 * reported as such and the caller re-scans the whole directory.
 * If the directory itself goes, the watch is gone too (IN_IGNORED): the
 * caller opens a new one.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/discover.h"

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
		    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

int discover_open(const char *dir)
{
	int fd;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, dir, WATCH_MASK) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int discover_read(int fd, void (*name)(void *arg, const char *name),
		  void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int changed = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		const struct inotify_event *ev;

		if (n < 0) {
			if (errno == EAGAIN)
				return changed;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return changed;
		for (char *p = buf; p < buf + n;
		     p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_IGNORED) {
				changed = DISCOVER_GONE;
			} else if (ev->mask & IN_Q_OVERFLOW) {
				if (changed < DISCOVER_LOST)
					changed = DISCOVER_LOST;
			} else if (ev->len && ev->name[0] != '.') {
				if (changed < DISCOVER_NAMES)
					changed = DISCOVER_NAMES;
				name(arg, ev->name);
			}
		}
	}
}
