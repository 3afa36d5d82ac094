/* SPDX-License-Identifier: MIT */
/* netns: named network namespace handles and sockets made inside them. */
#ifndef NSRELAY_NETNS_H
#define NSRELAY_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A namespace is known by the identity of its nsfs inode, not by its name:
 * a namespace deleted and re-created under the same name is another one. */
struct netns_id {
	dev_t dev;
	ino_t ino;
};

static inline bool netns_id_eq(const struct netns_id *a,
			       const struct netns_id *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

/* Remember the calling thread's namespace as "host", where every socket but
 * the listeners is made, and where netns_run_in() returns.  Call from the
 * main thread before any other thread exists and before netns_run_in();
 * later calls do nothing.  0 or -errno. */
int netns_host_init(void);

/* Run fn(arg) with the calling thread inside the network namespace nsfd, or
 * in a new one (NETNS_NEW: unshare(CLONE_NEWNET), the namespace lives on
 * only if fn keeps a reference to it, e.g. opens /proc/thread-self/ns/net),
 * then bring the thread back to the host namespace.  Returns what fn
 * returned, or -errno when the thread could not enter (fn not run; -EBADF
 * before netns_host_init()).  Failing to come back aborts the process.  fn
 * must not change namespace itself, and should only make what has to be
 * made there (sockets, a namespace reference). */
#define NETNS_NEW (-2)
int netns_run_in(int nsfd, int (*fn)(void *arg), void *arg);

/* Whether id is the namespace saved by netns_host_init() (the daemon's
 * own), whatever name, symlink or bind mount led to it. */
bool netns_is_host(const struct netns_id *id);

/* Open DIR/NAME and check that it is a network namespace (nsfs, type
 * CLONE_NEWNET).  Returns an O_CLOEXEC fd (caller closes) and sets *id, or
 * -errno:
 *   -ENOENT   missing;
 *   -ELOOP    a symbolic link (never followed);
 *   -EAGAIN   an empty regular file: not a namespace yet, maybe one being
 *             mounted (`ip netns add` creates the file, then mounts the
 *             namespace on it, with no event for the mount): look again;
 *   -ENOTTY   something that will never be a namespace: a regular file
 *             with data, a directory, a FIFO, a socket, a device, another
 *             kind of namespace (only a new file at that name can change
 *             that; looking again is pointless);
 *   others as open(2).
 * Nothing but a namespace is ever opened for reading: a FIFO never blocks
 * the caller, a device is never opened. */
int netns_open(const char *dir, const char *name, struct netns_id *id);

/* Identity of the namespace mounted at DIR/NAME, without opening it.
 * 0, -ENOENT, -ELOOP (a symbolic link), -EAGAIN (an empty regular file, as
 * above), -ENOTTY (never a namespace, as above) or another -errno. */
int netns_stat(const char *dir, const char *name, struct netns_id *id);

/* socket(2) inside the namespace NSFD: the thread enters it, creates the
 * socket (non-blocking, close-on-exec) and returns to the host namespace.
 * Returns the fd or -errno.  Failing to return is fatal: the process aborts
 * rather than make any further socket inside a user's namespace. */
int netns_socket(int nsfd, int domain, int type, int protocol);

/* Identity of the namespace a socket belongs to (SIOCGSKNS).  0 or -errno. */
int netns_of_socket(int fd, struct netns_id *id);

/* The names in DIR, sorted; hidden files skipped.  Returns the count and
 * sets *names (free with netns_names_free()), or -errno. */
int netns_list(const char *dir, char ***names);
void netns_names_free(char **names, int n);
#endif
