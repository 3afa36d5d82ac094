/* SPDX-License-Identifier: MIT */
/* nsrpam: ask nsrelayd for a user's namespace and enter it.
 *
 * Theory of operation.  At session open, as root, inside sshd, su, cron or
 * systemd:
 *
 *   1. connect to the daemon's control socket (a root-owned socket file
 *      whose listener was opened by root: SO_PEERCRED), send
 *      "provision USER\n" and half-close; read one line within the
 *      deadline.  The daemon answers once the namespace is wired and its
 *      listeners are open; for a namespace that is ready it answers at
 *      once.  USER was validated first so that it cannot carry a second
 *      command or a newline.  The socket's group may have read and write
 *      (control.group, for monitoring): the daemon decides what each
 *      client may do from its SO_PEERCRED, and only root may provision,
 *      so a member of the group cannot answer in the daemon's place; it
 *      could only do that by owning the listener, which SO_PEERCRED
 *      checks.  Bits for others are refused: nsrelayd never sets them.
 *      The line is read to its newline however long it is (up to
 *      NSRPAM_ANSWER_MAX), and only its beginning is kept: the words
 *      that matter come first, a long list of listeners that failed
 *      must not deny the session it reports on.
 *   2. "ok USER NS ..." must name the user asked for; NS must be a plain
 *      file name.
 *   3. open DIR/NS without following a symlink in a root-owned directory
 *      nobody else can write to, and check that the file is an nsfs
 *      mount of a *network* namespace (NS_GET_NSTYPE), not a file some
 *      process placed there.
 *   4. setns(fd, CLONE_NEWNET): the calling thread, and every process it
 *      starts from now on (the user's shell and all it runs), is in NS.
 *
 * One deadline covers connect, send and receive.  Every descriptor is
 * close-on-exec and closed before returning: nothing is left in the
 * session.  Nothing here reads the environment or any path the user
 * controls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>
#include <linux/nsfs.h>

#include "contrib/pam/nsrpam.h"

#define WHY(...)	snprintf(why, len, __VA_ARGS__)

static int set_str(char *dst, size_t size, const char *val)
{
	size_t n = strlen(val);

	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(dst, val, n + 1);
	return 0;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "10" (seconds), "2.5" or "2.5s" (seconds), "250ms" -> milliseconds */
static int parse_timeout(const char *s, int *ms)
{
	unsigned long whole = 0, frac = 0, scale = 1000;
	const char *p = s;
	int digits = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9' && whole < 100000)
		whole = whole * 10 + (unsigned long)(*p++ - '0');
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits++ < 3) {
				frac = frac * 10 + (unsigned long)(*p - '0');
				scale /= 10;
			}
			p++;
		}
		if (!digits)
			return -EINVAL;
	}
	if (!strcmp(p, "ms")) {
		if (digits)
			return -EINVAL;
		*ms = (int)whole;
	} else if (!*p || !strcmp(p, "s")) {
		if (whole > 3600)
			return -EINVAL;
		*ms = (int)(whole * 1000 + frac * scale);
	} else {
		return -EINVAL;
	}
	if (*ms < 1 || *ms > 3600 * 1000)
		return -EINVAL;
	return 0;
}

int nsrpam_parse_args(struct nsrpam_opts *o, int argc, const char **argv,
		      char *why, size_t len)
{
	unsigned long v;
	int i;

	memset(o, 0, sizeof(*o));
	strcpy(o->socket, NSRPAM_DEFAULT_SOCKET);
	strcpy(o->dir, NSRPAM_DEFAULT_DIR);
	o->min_uid = NSRPAM_DEFAULT_MIN_UID;
	o->max_uid = (uid_t)-2;
	o->timeout_ms = NSRPAM_DEFAULT_TIMEOUT;
	o->socket_uid = 0;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *val = strchr(a, '=');
		size_t klen = val ? (size_t)(val - a) : strlen(a);
		int r = 0;

		if (val)
			val++;
#define KEY(k)	(klen == sizeof(k) - 1 && !strncmp(a, k, klen))
		if (KEY("debug") && !val) {
			o->debug = true;
		} else if (!val) {
			r = -EINVAL;
		} else if (KEY("socket")) {
			r = set_str(o->socket, sizeof(o->socket), val);
			if (!r && val[0] != '/')
				r = -EINVAL;
		} else if (KEY("dir")) {
			r = set_str(o->dir, sizeof(o->dir), val);
			if (!r && val[0] != '/')
				r = -EINVAL;
		} else if (KEY("min_uid")) {
			r = parse_ulong(val, (uid_t)-2, &v);
			o->min_uid = (uid_t)v;
		} else if (KEY("max_uid")) {
			r = parse_ulong(val, (uid_t)-2, &v);
			o->max_uid = (uid_t)v;
		} else if (KEY("timeout")) {
			r = parse_timeout(val, &o->timeout_ms);
		} else if (KEY("fail")) {
			if (!strcmp(val, "open"))
				o->fail_open = true;
			else if (!strcmp(val, "closed"))
				o->fail_open = false;
			else
				r = -EINVAL;
		} else {
			WHY("unknown option \"%.*s\"", (int)(klen > 64 ? 64 : klen), a);
			return -EINVAL;
		}
#undef KEY
		if (r < 0) {
			WHY("bad option \"%.200s\"", a);
			return -EINVAL;
		}
	}
	if (o->min_uid > o->max_uid) {
		WHY("min_uid %lu is above max_uid %lu",
		    (unsigned long)o->min_uid, (unsigned long)o->max_uid);
		return -EINVAL;
	}
	return 0;
}

bool nsrpam_valid_user(const char *name)
{
	size_t i, n = strnlen(name, NSRPAM_NAME_MAX + 1);

	if (n == 0 || n > NSRPAM_NAME_MAX || name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')
			continue;
		if (c == '$' && i == n - 1 && i > 0)
			continue;
		return false;
	}
	return true;
}

bool nsrpam_valid_ns(const char *name)
{
	size_t i, n = strnlen(name, NSRPAM_NAME_MAX + 1);

	if (n == 0 || n > NSRPAM_NAME_MAX || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= ' ' || c >= 0x7f || c == '/')
			return false;
	}
	return true;
}

/* Copy S into WHY with control characters replaced (it goes to syslog). */
static void copy_clean(char *why, size_t len, const char *s)
{
	size_t i;

	if (!len)
		return;
	for (i = 0; i + 1 < len && s[i] && s[i] != '\n'; i++)
		why[i] = (s[i] < ' ' || s[i] == 0x7f) ? '?' : s[i];
	why[i] = '\0';
}

int nsrpam_parse_answer(const char *line, const char *user, char *ns,
			size_t nslen, char *why, size_t len)
{
	const char *p = line, *tok[3];
	size_t tlen[3];
	int n;

	if (!strncmp(line, "error:", 6)) {
		p = line + 6;
		while (*p == ' ')
			p++;
		copy_clean(why, len, *p ? p : "(no reason given)");
		return -EREMOTEIO;
	}
	for (n = 0; n < 3; n++) {
		while (*p == ' ')
			p++;
		tok[n] = p;
		p += strcspn(p, " \r\n");
		tlen[n] = (size_t)(p - tok[n]);
		if (!tlen[n])
			break;
	}
	if (n < 3 || tlen[0] != 2 || strncmp(tok[0], "ok", 2)) {
		WHY("unexpected answer from the daemon");
		return -EPROTO;
	}
	if (tlen[1] != strlen(user) || strncmp(tok[1], user, tlen[1])) {
		WHY("the daemon answered for another user");
		return -EPROTO;
	}
	if (tlen[2] >= nslen) {
		WHY("namespace name too long");
		return -EPROTO;
	}
	memcpy(ns, tok[2], tlen[2]);
	ns[tlen[2]] = '\0';
	if (!nsrpam_valid_ns(ns)) {
		WHY("bad namespace name in the daemon's answer");
		return -EPROTO;
	}
	return 0;
}

void nsrpam_line_init(struct nsrpam_line *l, char *line, size_t size)
{
	l->line = line;
	l->size = size;
	l->kept = l->total = 0;
	line[0] = '\0';
}

int nsrpam_line_feed(struct nsrpam_line *l, const char *buf, size_t n)
{
	const char *nl = memchr(buf, '\n', n);
	size_t len = nl ? (size_t)(nl - buf) : n, keep;

	if (memchr(buf, '\0', len))
		return -EPROTO;
	if (len >= NSRPAM_ANSWER_MAX - l->total)
		return -EMSGSIZE;
	keep = l->size - 1 - l->kept;
	if (keep > len)
		keep = len;
	memcpy(l->line + l->kept, buf, keep);
	l->kept += keep;
	l->line[l->kept] = '\0';
	l->total += len;
	return nl ? 1 : 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for EVENTS on FD until DEADLINE (ms, CLOCK_MONOTONIC). */
static int wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	long long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int nsrpam_ask(const struct nsrpam_opts *o, const char *user, char *line,
	       size_t linelen, char *why, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + o->timeout_ms;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct stat st;
	struct nsrpam_line ans;
	char req[NSRPAM_NAME_MAX + 16], buf[512];
	size_t sent = 0, reqlen;
	int fd, r;

	if (!nsrpam_valid_user(user)) {
		WHY("user name not accepted");
		return -EINVAL;
	}
	reqlen = (size_t)snprintf(req, sizeof(req), "provision %s\n", user);
	if (strlen(o->socket) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, o->socket);
	if (lstat(o->socket, &st) < 0) {
		r = -errno;
		WHY("%s: %s (is nsrelayd running with provisioning?)",
		    o->socket, strerror(-r));
		return r;
	}
	if (!S_ISSOCK(st.st_mode) || st.st_uid != o->socket_uid ||
	    (st.st_mode & 0007)) {
		WHY("%s: not a socket owned by uid %lu without access for "
		    "others (mode 0600 or 0660)", o->socket,
		    (unsigned long)o->socket_uid);
		return -EPERM;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		WHY("socket: %s", strerror(-r));
		return r;
	}
	/* a unix connect completes at once, or fails with EAGAIN while the
	 * listener's backlog is full: retry until the deadline */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		if (r != -EAGAIN && r != -EINTR) {
			WHY("connect %s: %s", o->socket, strerror(-r));
			goto out;
		}
		if (now_ms() >= deadline) {
			r = -ETIMEDOUT;
			WHY("connect %s: backlog full until the timeout",
			    o->socket);
			goto out;
		}
		poll(NULL, 0, 5);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    cred.uid != o->socket_uid) {
		r = -EPERM;
		WHY("%s: the listener is not uid %lu's", o->socket,
		    (unsigned long)o->socket_uid);
		goto out;
	}
	while (sent < reqlen) {
		ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = wait_fd(fd, POLLOUT, deadline);
			if (r < 0)
				goto io_err;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto io_err;
		}
		sent += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	nsrpam_line_init(&ans, line, linelen);
	for (;;) {
		ssize_t n;

		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = wait_fd(fd, POLLIN, deadline);
			if (r < 0)
				goto io_err;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto io_err;
		}
		if (n == 0) {
			r = -ECONNRESET;
			WHY("the daemon closed the connection without an answer");
			goto out;
		}
		r = nsrpam_line_feed(&ans, buf, (size_t)n);
		if (r == -EPROTO)
			WHY("NUL byte in the daemon's answer");
		else if (r == -EMSGSIZE)
			WHY("answer too long");
		if (r != 0) {
			r = r < 0 ? r : 0;
			goto out;
		}
	}
io_err:
	if (r == -ETIMEDOUT)
		WHY("no answer from the daemon within %d ms", o->timeout_ms);
	else
		WHY("control socket: %s", strerror(-r));
out:
	close(fd);
	return r;
}

int nsrpam_open_ns(const struct nsrpam_opts *o, const char *ns, char *why,
		   size_t len)
{
	struct statfs sfs;
	struct stat st;
	int dfd, fd, r, type;

	if (!nsrpam_valid_ns(ns)) {
		WHY("bad namespace name");
		return -EINVAL;
	}
	dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		WHY("%s: %s", o->dir, strerror(-r));
		return r;
	}
	if (fstat(dfd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		close(dfd);
		WHY("%s: not a directory owned by root and writable only by it",
		    o->dir);
		return -EPERM;
	}
	fd = openat(dfd, ns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
		    O_NONBLOCK);
	r = -errno;
	close(dfd);
	if (fd < 0) {
		WHY("%s/%s: %s", o->dir, ns, strerror(-r));
		return r;
	}
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC) {
		WHY("%s/%s: not a namespace", o->dir, ns);
		r = -EINVAL;
		goto fail;
	}
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type != CLONE_NEWNET) {
		WHY("%s/%s: not a network namespace", o->dir, ns);
		r = -EINVAL;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}

int nsrpam_enter(const struct nsrpam_opts *o, const char *user, char *ns,
		 size_t nslen, char *why, size_t len)
{
	char line[NSRPAM_LINE_MAX];
	int fd, r;

	r = nsrpam_ask(o, user, line, sizeof(line), why, len);
	if (r < 0)
		return r;
	r = nsrpam_parse_answer(line, user, ns, nslen, why, len);
	if (r < 0)
		return r;
	fd = nsrpam_open_ns(o, ns, why, len);
	if (fd < 0)
		return fd;
	r = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
	if (r < 0)
		WHY("setns %s/%s: %s", o->dir, ns, strerror(-r));
	close(fd);
	return r;
}
