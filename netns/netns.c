/* SPDX-License-Identifier: MIT */
/* netns: named network namespace handles and sockets made inside them.
 *
 * How it works: a named namespace is a nsfs inode bind-mounted on a file in
 * a directory (/run/netns, iproute2's convention).  Only socket(2) has to run
 * inside the namespace: a socket belongs to the namespace it was created in,
 * and bind/listen/accept on it work from anywhere.
 *
 * netns_run_in() is the one place where a thread changes namespace: it moves
 * the calling thread with setns(2) (or unshare(2) for a new namespace), runs
 * a function there and moves straight back to the host namespace saved by
 * netns_host_init().  setns() and unshare() act on the calling thread only,
 * so nothing else runs in between.  If the way back fails the process
 * aborts: carrying on would create the next upstream socket inside a user's
 * namespace, where the user could impersonate it.  netns_socket(), nl_open()
 * and the provisioner's namespace creation all go through it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>

#include "netns/netns.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

static int host_fd = -1;
static struct netns_id host_id;

int netns_host_init(void)
{
	struct stat st;

	if (host_fd >= 0)
		return 0;
	host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (host_fd < 0)
		return -errno;
	if (fstat(host_fd, &st) == 0) {
		host_id.dev = st.st_dev;
		host_id.ino = st.st_ino;
	}
	return 0;
}

bool netns_is_host(const struct netns_id *id)
{
	return host_fd >= 0 && netns_id_eq(id, &host_id);
}

static int ns_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* What the file behind FD (from lstat/fstat ST) is, when it is not a
 * mounted namespace: an empty regular file may be `ip netns add` half-way
 * (it creates the file, then mounts on it): -EAGAIN; anything else (data in
 * a regular file, a directory, a FIFO, a socket, a device) will never
 * become one: -ENOTTY. */
static int not_netns(const struct stat *st)
{
	if (S_ISLNK(st->st_mode))
		return -ELOOP;
	return S_ISREG(st->st_mode) && st->st_size == 0 ? -EAGAIN : -ENOTTY;
}

/* Classify without opening for I/O: O_PATH opens neither FIFOs (no
 * blocking) nor devices (no side effect), needs no read permission (the
 * placeholder is mode 0) and, with O_NOFOLLOW, gives the link itself.
 * Only a file on nsfs is then opened for real, by the same path, and must
 * still be the same inode.  Returns the fd or -errno as netns_open(). */
static int open_netns(const char *path, struct stat *st)
{
	struct statfs sfs;
	struct stat st2;
	int pfd, fd, r;

	pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	if (fstat(pfd, st) < 0 || fstatfs(pfd, &sfs) < 0) {
		r = -errno;
		goto out;
	}
	if (sfs.f_type != NSFS_MAGIC) {
		r = not_netns(st);
		goto out;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		  O_CLOEXEC);
	if (fd < 0) {
		r = errno == ELOOP ? -EAGAIN : -errno;	/* changed meanwhile */
		goto out;
	}
	if (fstat(fd, &st2) < 0) {
		r = -errno;
	} else if (st2.st_dev != st->st_dev || st2.st_ino != st->st_ino) {
		r = -EAGAIN;			/* changed meanwhile: again */
	} else if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		r = -ENOTTY;			/* another kind of namespace */
	} else {
		close(pfd);
		return fd;
	}
	close(fd);
out:
	close(pfd);
	return r;
}

int netns_open(const char *dir, const char *name, struct netns_id *id)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	fd = ns_path(path, sizeof(path), dir, name);
	if (fd < 0)
		return fd;
	fd = open_netns(path, &st);
	if (fd < 0)
		return fd;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	return fd;
}

int netns_stat(const char *dir, const char *name, struct netns_id *id)
{
	char path[PATH_MAX];
	struct statfs sfs;
	struct stat st;
	int r;

	r = ns_path(path, sizeof(path), dir, name);
	if (r < 0)
		return r;
	if (lstat(path, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;		/* never followed */
	if (statfs(path, &sfs) < 0 || stat(path, &st) < 0)
		return -errno;
	if (sfs.f_type != NSFS_MAGIC)
		return not_netns(&st);
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	return 0;
}

int netns_run_in(int nsfd, int (*fn)(void *arg), void *arg)
{
	int r;

	if (host_fd < 0)
		return -EBADF;
	if (nsfd == NETNS_NEW ? unshare(CLONE_NEWNET) < 0
			      : setns(nsfd, CLONE_NEWNET) < 0)
		return -errno;
	r = fn(arg);
	if (setns(host_fd, CLONE_NEWNET) < 0) {
		static const char msg[] = "nsrelayd: fatal: cannot return to "
			"the host network namespace; aborting\n";

		ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

		(void)n;
		abort();
	}
	return r;
}

struct socket_args {
	int domain, type, protocol;
};

static int socket_here(void *arg)
{
	const struct socket_args *a = arg;
	int fd = socket(a->domain, a->type | SOCK_NONBLOCK | SOCK_CLOEXEC,
			a->protocol);

	return fd < 0 ? -errno : fd;
}

int netns_socket(int nsfd, int domain, int type, int protocol)
{
	struct socket_args a = { domain, type, protocol };

	if (nsfd < 0)
		return -EBADF;
	return netns_run_in(nsfd, socket_here, &a);
}

int netns_of_socket(int fd, struct netns_id *id)
{
	struct stat st;
	int nsfd, r = 0;

	nsfd = ioctl(fd, SIOCGSKNS);
	if (nsfd < 0)
		return -errno;
	if (fstat(nsfd, &st) < 0)
		r = -errno;
	else {
		id->dev = st.st_dev;
		id->ino = st.st_ino;
	}
	close(nsfd);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void netns_names_free(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int netns_list(const char *dir, char ***out)
{
	char **names = NULL, **tmp;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == INT_MAX) {
			r = -E2BIG;
			goto fail;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			tmp = realloc(names, cap * sizeof(*names));
			if (!tmp) {
				r = -ENOMEM;
				goto fail;
			}
			names = tmp;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			goto fail;
		}
		n++;
	}
	if (errno) {
		r = -errno;
		goto fail;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	return (int)n;
fail:
	closedir(d);
	netns_names_free(names, (int)n);
	return r;
}
