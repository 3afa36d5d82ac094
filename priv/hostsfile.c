/* SPDX-License-Identifier: MIT */
/* hostsfile: the file for the host's nginx, dnsmasq or /etc/hosts includes:
 *
 *   100.64.9.2 alice.users.example.org
 *   fd75:6272:7370:9::2 alice.users.example.org
 *
 * The daemon writes it with CAP_DAC_OVERRIDE, which lifts permission
 * checks: a user who could write the directory could make it overwrite any
 * file through a symlink named like the temporary.  So the directory is
 * opened with O_DIRECTORY|O_NOFOLLOW and checked (root's, not writable by
 * others), the temporary is created relative to it with O_EXCL|O_NOFOLLOW,
 * and renamed over the file with renameat(): every path lookup after the
 * directory's is one name, in a directory nobody else can change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "priv/hostsfile.h"

/* Open the directory of PATH and check it; sets *base to the last
 * component.  The fd or -errno. */
static int open_dir(const char *path, const char **base)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	struct stat st;
	int fd;

	if (!slash || !slash[1])
		return -EINVAL;
	if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	*base = slash + 1;
	fd = open(dir[0] ? dir : "/",
		  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* Replace PATH with what EMIT(f, ARG) writes.  0 or -errno. */
static int replace(const char *path, void (*emit)(FILE *f, const void *arg),
		   const void *arg)
{
	char tmp[NAME_MAX + 1];
	const char *base;
	int dfd, fd = -1, r = 0;
	FILE *f = NULL;

	dfd = open_dir(path, &base);
	if (dfd < 0)
		return dfd;
	if (snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", base, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	/* a stale temporary of ours (a crash): remove the name, never
	 * follow it */
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* mode first: once root's, the file is no longer ours to chmod */
	if (fchmod(fd, 0644) < 0) {
		r = -errno;
		goto out;
	}
	/* root's where the process may give it away (CAP_CHOWN) */
	if (fchown(fd, 0, 0) < 0 && errno != EPERM) {
		r = -errno;
		goto out;
	}
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		goto out;
	}
	fd = -1;
	emit(f, arg);
	if (ferror(f) | (fflush(f) != 0) | (fsync(fileno(f)) != 0))
		r = -(errno ? errno : EIO);
	if (fclose(f) != 0 && !r)
		r = -errno;
	f = NULL;
	if (!r && renameat(dfd, tmp, dfd, base) < 0)
		r = -errno;
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (r && r != -EEXIST)
		unlinkat(dfd, tmp, 0);
	close(dfd);
	return r;
}

struct hosts {
	const struct hostsfile_entry *e;
	size_t n;
	const char *domain;
};

static void emit_hosts(FILE *f, const void *arg)
{
	const struct hosts *h = arg;
	const char *dot = h->domain ? "." : "", *dom = h->domain ? h->domain : "";
	char a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];

	fprintf(f, "# written by nsrelayd: provisioned namespaces\n");
	for (size_t i = 0; i < h->n; i++) {
		inet_ntop(AF_INET, &h->e[i].v4, a4, sizeof(a4));
		inet_ntop(AF_INET6, &h->e[i].v6, a6, sizeof(a6));
		fprintf(f, "%s %s%s%s\n%s %s%s%s\n", a4, h->e[i].name, dot,
			dom, a6, h->e[i].name, dot, dom);
	}
}

int hostsfile_write(const char *path, const struct hostsfile_entry *e,
		    size_t n, const char *domain)
{
	const struct hosts h = { e, n, domain };

	return replace(path, emit_hosts, &h);
}

static void emit_lines(FILE *f, const void *arg)
{
	const char *const *lines = arg;

	for (size_t i = 0; lines[i]; i++)
		fprintf(f, "%s\n", lines[i]);
}

int hostsfile_write_lines(const char *path, const char *const *lines)
{
	return replace(path, emit_lines, lines);
}
