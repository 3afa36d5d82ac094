/* SPDX-License-Identifier: MIT */
/* prov_ns: the namespace file - open, create, remove.
 *
 * Theory of operation
 *
 *   NS       DIR/NAME holds a network namespace (nsfs, NS_GET_NSTYPE): adopt
 *            it.  Missing: create it as `ip netns add` does (DIR 0755, made a
 *            shared mount, bound onto itself first if it is not a mount
 *            point; the file O_EXCL mode 0; in a new namespace entered with
 *            netns_run_in(NETNS_NEW), open /proc/thread-self/ns/net and the
 *            namespace's netlink socket, back home at once - failing that
 *            aborts - then bind-mount the namespace on the file, through the
 *            descriptor of the file created, never by its name).  A file
 *            that is not a namespace may be `ip netns add` half-way: look
 *            again a few times, 50 ms apart (only if it is an empty
 *            regular file: anything else never becomes a namespace);
 *            if it stays an empty mode-0 file it is the leftover of a crash
 *            between create and mount, removed and replaced; anything else
 *            is an error.
 *
 * Removal (deprovision, or undo of a namespace this job created) is `ip
 * netns del`: umount2(MNT_DETACH), then unlink.
 *
 * The directory is trusted only if it is a directory owned by root and
 * writable by nobody else (prov_dir_check(), before every job): else whoever
 * could write there could plant a symbolic link where the provisioner
 * writes.  And no path in it is ever followed: the placeholder is created
 * O_CREAT|O_EXCL|O_NOFOLLOW, the mount goes through its descriptor, opens
 * are O_NOFOLLOW (and O_NONBLOCK: a FIFO must not block the loop), unmounts
 * UMOUNT_NOFOLLOW, and unlink(2) never follows a link anyway.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <event2/event.h>
#include <linux/magic.h>
#include <linux/nsfs.h>

#include "netns/netns.h"
#include "netns/prov_int.h"

static bool fd_is_netns(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC)
		return false;
	return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

int prov_dir_check(struct prov_job *j)
{
	const char *dir = j->prov->dir;
	struct stat st;
	int fd, err = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -ENOENT)
			return 0;	/* made (0755) when a namespace is */
		if (err == -ELOOP)
			prov_job_error(j, err, "namespace directory %s: a symbolic "
				       "link; refused", dir);
		else
			prov_job_error(j, err, "namespace directory %s: %s", dir,
				       strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		prov_job_error(j, err, "namespace directory %s: %s", dir,
			       strerror(-err));
	} else if (st.st_uid != 0) {
		err = -EPERM;
		prov_job_error(j, err, "namespace directory %s: owned by uid %u, "
			       "not root; refused", dir, (unsigned)st.st_uid);
	} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		err = -EPERM;
		prov_job_error(j, err, "namespace directory %s: writable by group "
			       "or others (mode %04o); refused", dir,
			       (unsigned)(st.st_mode & 07777));
	}
	close(fd);
	return err;
}

/* DIR exists and is a shared mount point, as `ip netns add` makes it. */
static int prov_dir_prepare(struct prov *prov, char *why, size_t n)
{
	bool bound = false;
	int lock = -1, ret = 0;

	if (prov->dir_ready)
		return 0;
	if (mkdir(prov->dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(why, n, "mkdir %s", prov->dir);
		goto out;
	}
	while (mount("", prov->dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
		if (errno != EINVAL || bound) {
			ret = -errno;
			snprintf(why, n, "make %s a shared mount", prov->dir);
			goto out;
		}
		/* not a mount point yet: bind it onto itself, like iproute2,
		 * under its lock; if someone holds it, go on like it does */
		if (lock < 0) {
			lock = open(prov->dir, O_RDONLY | O_DIRECTORY |
				    O_CLOEXEC);
			if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) < 0) {
				close(lock);
				lock = -2;
			}
		}
		if (mount(prov->dir, prov->dir, "none", MS_BIND | MS_REC,
			  NULL) < 0) {
			ret = -errno;
			snprintf(why, n, "bind-mount %s onto itself",
				 prov->dir);
			goto out;
		}
		bound = true;
	}
	prov->dir_ready = true;
out:
	if (lock >= 0)
		close(lock);	/* releases the flock */
	return ret;
}

/* Create the namespace at j->path: the placeholder file here, the new
 * namespace and its bind mount on the worker (prov_work.c).  Returns 1
 * (under way: step NS runs again when it is done, with j->nsfd open) or
 * -errno (-EEXIST: someone else is creating it). */
static int ns_create(struct prov_job *j)
{
	char why[PATH_MAX + 64];
	int fd, err;

	err = prov_dir_prepare(j->prov, why, sizeof(why));
	if (err) {
		prov_job_error(j, err, "%s: %s", why, strerror(-err));
		return err;
	}
	err = prov_dir_check(j);	/* it may have been made just now */
	if (err)
		return err;
	/* O_EXCL never follows a link at the name: a symbolic link planted
	 * there is EEXIST, then "not a namespace" (O_NOFOLLOW says it too) */
	fd = open(j->path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		  O_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		if (err == -EEXIST)	/* someone else is creating it */
			return err;
		prov_job_error(j, err, "create %s: %s", j->path, strerror(-err));
		return err;
	}

	/* unshare and mount block: on the worker, which mounts on fd (and
	 * closes it); back in step NS */
	err = prov_work_ns_create(j, fd);
	if (err < 0) {
		(void)unlink(j->path);
		return err;
	}
	return 1;
}

/* Open (or create) the namespace of j.  Returns 0 when j->nsfd is open,
 * 1 when it will look again later, -errno on failure (recorded). */
int prov_ns_open(struct prov_job *j, bool create)
{
	struct stat st;
	int fd, err;

	if (j->nsfd >= 0)
		return 0;	/* created by this job (prov_work.c) */
	fd = open(j->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		  O_CLOEXEC);
	if (fd < 0 && errno == ELOOP) {
		prov_job_error(j, -EEXIST, "%s exists and is a symbolic link, "
			       "not a network namespace; refused", j->path);
		return -EEXIST;
	}
	if (fd < 0 && errno != ENOENT) {
		err = -errno;
		prov_job_error(j, err, "open %s: %s", j->path, strerror(-err));
		return err;
	}
	if (fd >= 0) {
		if (fd_is_netns(fd)) {
			j->nsfd = fd;
			return 0;
		}
		err = fstat(fd, &st) < 0 ? -errno : 0;
		close(fd);
		if (err) {
			prov_job_error(j, err, "stat %s: %s", j->path,
				  strerror(-err));
			return err;
		}
		/* only an empty file may still get a namespace mounted on
		 * it (netns_open()'s -EAGAIN): anything else never will */
		if (S_ISREG(st.st_mode) && !st.st_size &&
		    j->ns_tries++ < PROV_NS_RETRIES)
			goto later;
		if (!S_ISREG(st.st_mode) || st.st_size ||
		    (st.st_mode & 07777)) {
			prov_job_error(j, -EEXIST, "%s exists and is not a network "
				  "namespace", j->path);
			return -EEXIST;
		}
		if (!create) {
			j->rm_file = true;
			return 0;
		}
		/* the placeholder of a creation that never finished */
		(void)umount2(j->path, MNT_DETACH | UMOUNT_NOFOLLOW);
		if (unlink(j->path) < 0 && errno != ENOENT) {
			err = -errno;
			prov_job_error(j, err, "remove the stale placeholder %s: %s",
				  j->path, strerror(-err));
			return err;
		}
	}
	if (!create)
		return 0;
	err = ns_create(j);
	if (err == -EEXIST && j->ns_tries++ < PROV_NS_RETRIES)
		goto later;
	if (err == -EEXIST)
		prov_job_error(j, err, "%s appeared but never became a namespace",
			  j->path);
	return err;
later:
	/* the file is there but no namespace on it (yet) */
	err = prov_job_sleep(j, PROV_NS_RETRY_MS);
	return err ? err : 1;
}

void prov_ns_undo(struct prov_job *j)
{
	if (j->ns_created) {
		(void)umount2(j->path, MNT_DETACH | UMOUNT_NOFOLLOW);
		(void)unlink(j->path);
	}
}


void prov_ns_remove(struct prov_job *j)
{
	if (j->nsfd < 0 && !j->rm_file)
		return;		/* nothing there */
	if (prov_dir_check(j))
		return;
	prov_work_ns_remove(j);	/* umount2 and unlink block: on the worker */
}
