/* SPDX-License-Identifier: MIT */
/* nsops: listening sockets in namespaces, namespace files, rtnetlink
 * sockets in namespaces: the calls that need privilege.
 *
 * Theory of operation
 *
 * A socket belongs to the namespace it was made in: only socket(2) runs
 * inside (netns_run_in(), which comes back home or aborts); options, bind
 * and listen follow from the host.
 *
 * A namespace file is handled as iproute2's `ip netns` does.  Opening:
 * DIR/NAME holds a network namespace (nsfs, NS_GET_NSTYPE): that one.  An
 * empty regular file may be `ip netns add` half-way (it creates the file,
 * then mounts on it, with no event in between): the caller looks again a
 * few times; an empty mode-0 file that stays so is the leftover of a crash
 * between the two, removed (NSOPS_STALE).  Anything else is not a
 * namespace.  Creating: DIR 0755, made a shared mount (bound onto itself
 * first if it is not a mount point, under its flock, as iproute2 does);
 * the file O_CREAT|O_EXCL|O_NOFOLLOW mode 0; a new namespace (unshare in
 * netns_run_in(NETNS_NEW), a descriptor of it kept), bind-mounted through
 * /proc/self/fd of the file's own descriptor, so that whatever is at its
 * name by then the mount lands on the file made here.  Removing: umount2
 * (MNT_DETACH | UMOUNT_NOFOLLOW), then unlink.
 *
 * The directory is trusted only if it is owned by root and writable by
 * nobody else: else whoever could write there could plant a symbolic link
 * where the files are made.  No path in it is ever followed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>

#include "netns/nsops.h"

#define WHY(...)	snprintf(why, len, __VA_ARGS__)

static int set_opt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val));
}

/* ------------------------------------------------------------ listeners */

/* The listeners' options on FD, then bind to SA and listen.  FD or
 * -errno with *step (FD closed). */
static int listen_on(int fd, const struct sockaddr *sa, socklen_t salen,
		     bool dgram, enum nsops_step *step)
{
	int family = sa->sa_family, r;

	*step = NSOPS_STEP_SETSOCKOPT;
	/* TCP_NODELAY is inherited by every accepted socket.  Never
	 * SO_REUSEADDR on a UDP socket: a tenant's socket with it could
	 * then bind the same port and take the datagrams. */
	if ((!dgram && (set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0 ||
			set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1) < 0)) ||
	    (family == AF_INET && set_opt(fd, SOL_IP, IP_FREEBIND, 1) < 0) ||
	    (family == AF_INET6 &&
	     (set_opt(fd, SOL_IPV6, IPV6_V6ONLY, 1) < 0 ||
	      set_opt(fd, SOL_IPV6, IPV6_FREEBIND, 1) < 0)))
		goto fail;
	*step = NSOPS_STEP_BIND;
	if (bind(fd, sa, salen) < 0)
		goto fail;
	*step = NSOPS_STEP_LISTEN;
	if (!dgram && listen(fd, SOMAXCONN) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

int nsops_listen(int nsfd, const struct sockaddr *sa, socklen_t salen,
		 enum nsops_step *step)
{
	int fd;

	*step = NSOPS_STEP_SOCKET;
	fd = nsfd >= 0 ? netns_socket(nsfd, sa->sa_family, SOCK_STREAM, 0) :
	     socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return nsfd >= 0 ? fd : -errno;
	return listen_on(fd, sa, salen, false, step);
}

struct sockets {
	const struct sockaddr *const *sa;
	const bool *dgram;
	size_t n;
	int *res;
};

static int sockets_here(void *arg)
{
	struct sockets *a = arg;

	for (size_t i = 0; i < a->n; i++) {
		a->res[i] = socket(a->sa[i]->sa_family,
				   (a->dgram[i] ? SOCK_DGRAM : SOCK_STREAM) |
				   SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (a->res[i] < 0)
			a->res[i] = -errno;
	}
	return 0;
}

void nsops_listen_all(int nsfd, const struct sockaddr *const *sa,
		      const socklen_t *salen, const bool *dgram, size_t n,
		      int *res, enum nsops_step *steps)
{
	struct sockets a = { sa, dgram, n, res };
	int r;

	/* one setns there and back for all of them: at start-up with
	 * thousands of namespaces, setns is most of the cost */
	r = nsfd >= 0 ? netns_run_in(nsfd, sockets_here, &a) : sockets_here(&a);
	for (size_t i = 0; i < n; i++) {
		steps[i] = NSOPS_STEP_SOCKET;
		if (r < 0)
			res[i] = r;
		else if (res[i] >= 0)
			res[i] = listen_on(res[i], sa[i], salen[i], dgram[i],
					   &steps[i]);
	}
}

/* ------------------------------------------------------------ namespaces */

static bool fd_is_netns(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC)
		return false;
	return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

int nsops_dir_check(const char *dir, char *why, size_t len)
{
	struct stat st;
	int fd, err = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			return 0;	/* made (0755) when a namespace is */
		if (err == -ELOOP)
			WHY("namespace directory %s: a symbolic link; refused",
			    dir);
		else
			WHY("namespace directory %s: %s", dir, strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		WHY("namespace directory %s: %s", dir, strerror(-err));
	} else if (st.st_uid != 0) {
		err = -EPERM;
		WHY("namespace directory %s: owned by uid %u, not root; "
		    "refused", dir, (unsigned)st.st_uid);
	} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		err = -EPERM;
		WHY("namespace directory %s: writable by group or others "
		    "(mode %04o); refused", dir, (unsigned)(st.st_mode & 07777));
	}
	close(fd);
	return err;
}

/* DIR exists and is a shared mount point, as `ip netns add` makes it. */
static int dir_prepare(const char *dir, char *why, size_t len)
{
	bool bound = false;
	int lock = -1, ret = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		WHY("mkdir %s: %s", dir, strerror(-ret));
		goto out;
	}
	while (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
		if (errno != EINVAL || bound) {
			ret = -errno;
			WHY("make %s a shared mount: %s", dir, strerror(-ret));
			goto out;
		}
		/* not a mount point yet: bind it onto itself, like iproute2,
		 * under its lock; if someone holds it, go on like it does */
		if (lock < 0) {
			lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) < 0) {
				close(lock);
				lock = -2;
			}
		}
		if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0) {
			ret = -errno;
			WHY("bind-mount %s onto itself: %s", dir,
			    strerror(-ret));
			goto out;
		}
		bound = true;
	}
out:
	if (lock >= 0)
		close(lock);	/* releases the flock */
	return ret;
}

static int ns_keep(void *arg)
{
	int *fd = arg;

	*fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

/* Create the namespace at PATH.  1 and *nsfd, or -errno (-EEXIST: the name
 * was taken meanwhile). */
static int ns_create(const char *dir, const char *path, int *nsfd,
		     char *why, size_t len)
{
	char src[64], dst[64];
	int pfd, err;

	err = dir_prepare(dir, why, len);
	if (err)
		return err;
	err = nsops_dir_check(dir, why, len);	/* it may be new */
	if (err)
		return err;
	/* O_EXCL never follows a link at the name: a symbolic link planted
	 * there is EEXIST */
	pfd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   0);
	if (pfd < 0) {
		err = -errno;
		if (err != -EEXIST)
			WHY("create %s: %s", path, strerror(-err));
		return err;
	}
	err = netns_run_in(NETNS_NEW, ns_keep, nsfd);
	if (err) {
		WHY("create namespace %s: unshare(CLONE_NEWNET): %s", path,
		    strerror(-err));
		goto fail;
	}
	/* onto the placeholder's descriptor, not its name */
	snprintf(src, sizeof(src), "/proc/self/fd/%d", *nsfd);
	snprintf(dst, sizeof(dst), "/proc/self/fd/%d", pfd);
	if (mount(src, dst, "none", MS_BIND, NULL) < 0) {
		err = -errno;
		WHY("create namespace %s: bind-mount the namespace: %s", path,
		    strerror(-err));
		close(*nsfd);
		*nsfd = -1;
		goto fail;
	}
	close(pfd);
	return 1;
fail:
	close(pfd);
	(void)unlink(path);
	return err;
}

/* PATH = DIR/NAME (PATH_MAX bytes), with DIR checked safe.  0 or -errno
 * with WHY. */
static int ns_path(const char *dir, const char *name, char *path,
		   char *why, size_t len)
{
	why[0] = '\0';
	if (snprintf(path, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) {
		WHY("%s/%s: name too long", dir, name);
		return -ENAMETOOLONG;
	}
	return nsops_dir_check(dir, why, len);
}

int nsops_open(const char *dir, const char *name, unsigned flags, int *nsfd,
	       struct netns_id *id, char *why, size_t len)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, err;

	*nsfd = -1;
	err = ns_path(dir, name, path, why, len);
	if (err)
		return err;
	/* O_PATH: no read permission needed (a placeholder is mode 0, and
	 * root has no CAP_DAC_OVERRIDE here), no FIFO opened, no link
	 * followed; only a namespace is then opened for real */
	fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		err = -errno;
		WHY("open %s: %s", path, strerror(-err));
		return err;
	}
	if (fd >= 0) {
		struct statfs sfs;

		if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
			err = -errno;
			close(fd);
			WHY("stat %s: %s", path, strerror(-err));
			return err;
		}
		if (S_ISLNK(st.st_mode)) {
			close(fd);
			WHY("%s exists and is a symbolic link, not a network "
			    "namespace; refused", path);
			return -EEXIST;
		}
		if (sfs.f_type == NSFS_MAGIC) {
			int rfd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
				       O_NOCTTY | O_CLOEXEC);
			struct stat st2;

			close(fd);
			if (rfd < 0) {
				err = -errno;
				WHY("open %s: %s", path, strerror(-err));
				return err == -ELOOP ? -EAGAIN : err;
			}
			if (fstat(rfd, &st2) == 0 && st2.st_ino == st.st_ino &&
			    st2.st_dev == st.st_dev && fd_is_netns(rfd)) {
				fd = rfd;
				err = 0;
				goto found;
			}
			close(rfd);
			WHY("%s changed while it was opened", path);
			return -EAGAIN;
		}
		close(fd);
		/* only an empty file may still get a namespace mounted on
		 * it (netns_open()'s -EAGAIN): anything else never will */
		if (!S_ISREG(st.st_mode) || st.st_size ||
		    ((st.st_mode & 07777) && (flags & NSOPS_STALE))) {
			WHY("%s exists and is not a network namespace", path);
			return -EEXIST;
		}
		if (!(flags & NSOPS_STALE)) {
			WHY("%s is an empty file, not (yet) a namespace", path);
			return -EAGAIN;
		}
		/* the placeholder of a creation that never finished */
		(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
		if (unlink(path) < 0 && errno != ENOENT) {
			err = -errno;
			WHY("remove the stale placeholder %s: %s", path,
			    strerror(-err));
			return err;
		}
	}
	if (!(flags & NSOPS_CREATE)) {
		WHY("%s: no such namespace", path);
		return -ENOENT;
	}
	err = ns_create(dir, path, &fd, why, len);
	if (err == -EEXIST) {
		WHY("%s appeared meanwhile", path);
		return -EAGAIN;		/* someone else is creating it */
	}
	if (err < 0)
		return err;
found:
	if (fstat(fd, &st) < 0) {
		int e = -errno;

		WHY("fstat %s: %s", path, strerror(-e));
		close(fd);
		return e;
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	*nsfd = fd;
	return err;
}

int nsops_remove(const char *dir, const char *name, char *why, size_t len)
{
	char path[PATH_MAX];
	int err;

	err = ns_path(dir, name, path, why, len);
	if (err)
		return err;
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 &&
	    errno != EINVAL && errno != ENOENT) {
		err = -errno;
		WHY("unmount %s: %s", path, strerror(-err));
		return err;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		err = -errno;
		WHY("remove %s: %s", path, strerror(-err));
		return err;
	}
	return 0;
}

/* ------------------------------------------------------------ rtnetlink */

static int nl_here(void *arg)
{
	int *fd = arg;

	*fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		     NETLINK_ROUTE);
	return *fd < 0 ? -errno : 0;
}

int nsops_nl_socket(int nsfd, uint32_t *portid)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t salen = sizeof(sa);
	int fd = -1, r, rcvbuf = 1 << 20;

	r = nsfd >= 0 ? netns_run_in(nsfd, nl_here, &fd) : nl_here(&fd);
	if (r < 0)
		return r;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				 sizeof(rcvbuf));
	/* older kernels lack some: answers are still correct without them */
	(void)set_opt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	(void)set_opt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
	(void)set_opt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*portid = sa.nl_pid;
	return fd;
}
