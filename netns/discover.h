/* SPDX-License-Identifier: MIT */
/* discover: notice namespaces appearing in or vanishing from a directory. */
#ifndef NSRELAY_DISCOVER_H
#define NSRELAY_DISCOVER_H

/* Watch DIR (creating it 0755 if missing) for names that appear or vanish,
 * as `ip netns monitor` does.  Returns a non-blocking, close-on-exec inotify
 * fd to poll for input, or -errno. */
int discover_open(const char *dir);

/* Drain the events pending on FD, calling NAME(ARG, name) for each name
 * created, deleted or moved (hidden names excepted; a name may come more
 * than once).  Returns DISCOVER_GONE when the watch itself is gone (the
 * directory was removed: re-scan and discover_open() again), else
 * DISCOVER_LOST when events were lost (re-scan everything), else
 * DISCOVER_NAMES when some name was reported, DISCOVER_NONE when nothing
 * relevant happened, or -errno. */
enum { DISCOVER_NONE, DISCOVER_NAMES, DISCOVER_LOST, DISCOVER_GONE };
int discover_read(int fd, void (*name)(void *arg, const char *name),
		  void *arg);
#endif
