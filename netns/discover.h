/* SPDX-License-Identifier: MIT */
/* discover: notice namespaces appearing in or vanishing from a directory. */
#ifndef NSRELAY_DISCOVER_H
#define NSRELAY_DISCOVER_H

/* Watch DIR (creating it 0755 if missing) for names that appear or vanish,
 * as `ip netns monitor` does.  Returns a non-blocking, close-on-exec inotify
 * fd to poll for input, or -errno. */
int discover_open(const char *dir);

/* Drain the events pending on FD.  Returns 1 when the directory changed
 * (or events were lost: the caller re-scans either way), 2 when the watch
 * itself is gone (the directory was removed: re-scan and discover_open()
 * again), 0 when nothing relevant happened, or -errno. */
int discover_read(int fd);
#endif
