/* SPDX-License-Identifier: MIT */
/* pam_test: the PAM module's logic (contrib/pam/nsrpam.c) without libpam:
 * options, names, the daemon's answers, the control exchange against a
 * scripted server (answers, silence, hang-ups, a socket not the daemon's),
 * namespace checks; no descriptor left open.  Built with the sanitizers
 * of the build, so this is the module's code under ASan/UBSan. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "contrib/pam/nsrpam.h"
#include "t/unit/tap.h"

static char tmpdir[64];
static char why[512];

static int nfds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the DIR's own */
}

static int args(struct nsrpam_opts *o, const char *a, const char *b)
{
	const char *argv[2] = { a, b };

	return nsrpam_parse_args(o, (a != NULL) + (b != NULL), argv, why,
				 sizeof(why));
}

static void test_args(void)
{
	struct nsrpam_opts o;

	ok(args(&o, NULL, NULL) == 0, "no options");
	is_str(o.socket, NSRPAM_DEFAULT_SOCKET, "default socket");
	is_str(o.dir, "/run/netns", "default dir");
	is_int(o.min_uid, 1000, "default min_uid");
	is_int(o.timeout_ms, 10000, "default timeout 10 s");
	ok(!o.fail_open, "default fail=closed");
	ok(args(&o, "fail=open", "timeout=2.5") == 0 && o.fail_open &&
	   o.timeout_ms == 2500, "fail=open timeout=2.5");
	ok(args(&o, "timeout=250ms", "min_uid=0") == 0 &&
	   o.timeout_ms == 250 && o.min_uid == 0, "timeout=250ms min_uid=0");
	ok(args(&o, "socket=/x/y.sock", "dir=/x/ns") == 0 &&
	   !strcmp(o.socket, "/x/y.sock") && !strcmp(o.dir, "/x/ns"),
	   "socket= dir=");
	ok(args(&o, "max_uid=5000", "debug") == 0 && o.max_uid == 5000 &&
	   o.debug, "max_uid= debug");
	ok(args(&o, "fail=maybe", NULL) == -EINVAL, "fail=maybe refused");
	ok(strstr(why, "fail=maybe") != NULL, "... naming the option: %s", why);
	ok(args(&o, "frob=1", NULL) == -EINVAL && strstr(why, "frob"),
	   "unknown option refused: %s", why);
	ok(args(&o, "socket=relative.sock", NULL) == -EINVAL,
	   "relative socket path refused");
	ok(args(&o, "dir=", NULL) == -EINVAL, "empty dir refused");
	ok(args(&o, "timeout=0", NULL) == -EINVAL, "timeout=0 refused");
	ok(args(&o, "timeout=-1", NULL) == -EINVAL, "timeout=-1 refused");
	ok(args(&o, "timeout=10x", NULL) == -EINVAL, "timeout=10x refused");
	ok(args(&o, "min_uid=abc", NULL) == -EINVAL, "min_uid=abc refused");
	ok(args(&o, "min_uid=99999999999999999999", NULL) == -EINVAL,
	   "min_uid overflow refused");
	ok(args(&o, "min_uid=2000", "max_uid=1000") == -EINVAL,
	   "min_uid above max_uid refused");
	ok(args(&o, "socket", NULL) == -EINVAL, "socket without value refused");
	{
		char big[300];

		memset(big, 'a', sizeof(big));
		memcpy(big, "socket=/", 8);
		big[sizeof(big) - 1] = '\0';
		ok(args(&o, big, NULL) == -EINVAL, "over-long socket refused");
	}
}

static void test_names(void)
{
	char big[300];

	ok(nsrpam_valid_user("alice"), "alice");
	ok(nsrpam_valid_user("a.b_c-d9"), "a.b_c-d9");
	ok(nsrpam_valid_user("host$"), "host$ (machine account)");
	ok(!nsrpam_valid_user(""), "empty user refused");
	ok(!nsrpam_valid_user("-x"), "leading dash refused");
	ok(!nsrpam_valid_user("a b"), "space refused");
	ok(!nsrpam_valid_user("a\nprovision root"), "newline refused");
	ok(!nsrpam_valid_user("a/b"), "slash refused");
	ok(!nsrpam_valid_user("a$b"), "inner $ refused");
	ok(!nsrpam_valid_user("$"), "lone $ refused");
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	ok(!nsrpam_valid_user(big), "over-long user refused");
	ok(nsrpam_valid_ns("u-alice"), "u-alice");
	ok(nsrpam_valid_ns("alice_ns@x"), "alice_ns@x");
	ok(!nsrpam_valid_ns(".") && !nsrpam_valid_ns(".."), ". and .. refused");
	ok(!nsrpam_valid_ns("../x") && !nsrpam_valid_ns("a/b"), "slash refused");
	ok(!nsrpam_valid_ns("a b") && !nsrpam_valid_ns("a\tb"),
	   "blank refused");
	ok(!nsrpam_valid_ns(""), "empty namespace refused");
	ok(!nsrpam_valid_ns(big), "over-long namespace refused");
}

static int answer(const char *line, char *ns, size_t nslen)
{
	return nsrpam_parse_answer(line, "alice", ns, nslen, why, sizeof(why));
}

static void test_answers(void)
{
	char ns[64];

	ok(answer("ok alice u-alice", ns, sizeof(ns)) == 0 &&
	   !strcmp(ns, "u-alice"), "ok alice u-alice");
	ok(answer("ok alice u-alice 3 listeners", ns, sizeof(ns)) == 0 &&
	   !strcmp(ns, "u-alice"), "extra tokens ignored");
	ok(answer("ok alice u-alice\r", ns, sizeof(ns)) == 0 &&
	   !strcmp(ns, "u-alice"), "CR ignored");
	is_int(answer("ok bob u-bob", ns, sizeof(ns)), -EPROTO,
	       "an answer for another user refused");
	is_int(answer("ok alicex u-alice", ns, sizeof(ns)), -EPROTO,
	       "... also a longer name");
	is_int(answer("ok alice", ns, sizeof(ns)), -EPROTO, "no namespace");
	is_int(answer("ok alice ..", ns, sizeof(ns)), -EPROTO, ".. refused");
	is_int(answer("okay alice u", ns, sizeof(ns)), -EPROTO, "not ok");
	is_int(answer("", ns, sizeof(ns)), -EPROTO, "empty answer");
	is_int(answer("ok alice abcdefghij", ns, 8), -EPROTO,
	       "a name longer than the buffer refused");
	is_int(answer("error: no such user \"alice\"", ns, sizeof(ns)),
	       -EREMOTEIO, "error: ...");
	is_str(why, "no such user \"alice\"", "... its reason");
	answer("error: a\x01" "b\x7f", ns, sizeof(ns));
	is_str(why, "a?b?", "control characters in the reason replaced");
}

/* Feed LINE to a reader of a SIZE-byte buffer CHUNK bytes at a time;
 * the last result. */
static int feed(const char *text, size_t n, size_t chunk, char *buf,
		size_t size, struct nsrpam_line *l)
{
	int r = 0;

	nsrpam_line_init(l, buf, size);
	for (size_t off = 0; off < n && r == 0; off += chunk)
		r = nsrpam_line_feed(l, text + off,
				     n - off < chunk ? n - off : chunk);
	return r;
}

static void test_line(void)
{
	static char big[NSRPAM_ANSWER_MAX + 2];
	struct nsrpam_line l;
	char buf[16];
	size_t chunks[] = { 1, 3, 7, 512, sizeof(big) };

	is_int(feed("ok a b\n", 7, 1, buf, sizeof(buf), &l), 1,
	       "a line a byte at a time: complete");
	is_str(buf, "ok a b", "... without its newline");
	is_int(feed("ok a b", 6, 2, buf, sizeof(buf), &l), 0,
	       "no newline yet: more to read");
	is_int(feed("ok a b\nerror: x\n", 17, 17, buf, sizeof(buf), &l), 1,
	       "bytes after the newline: ignored");
	is_str(buf, "ok a b", "... the first line only");
	is_int(feed("ok a bcdefghijklmnopqrstuvwxyz\n", 31, 4, buf,
		    sizeof(buf), &l), 1, "a line longer than the buffer: read");
	is_str(buf, "ok a bcdefghijk", "... its first 15 bytes kept");
	is_int((int)l.total, 30, "... all 30 counted");
	is_int(feed("ok a\0b\n", 7, 7, buf, sizeof(buf), &l), -EPROTO,
	       "a NUL byte in the line: refused");
	is_int(feed("ok a b\n\0", 8, 8, buf, sizeof(buf), &l), 1,
	       "... but not after the newline");
	memset(big, 'x', sizeof(big));
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		size_t c = chunks[i];

		big[NSRPAM_ANSWER_MAX - 1] = '\n';
		ok(feed(big, NSRPAM_ANSWER_MAX, c, buf, sizeof(buf), &l) == 1,
		   "a line of NSRPAM_ANSWER_MAX - 1 bytes, in pieces of "
		   "%zu: read", c);
		big[NSRPAM_ANSWER_MAX - 1] = 'x';
		big[NSRPAM_ANSWER_MAX] = '\n';
		ok(feed(big, NSRPAM_ANSWER_MAX + 1, c, buf, sizeof(buf), &l) ==
		   -EMSGSIZE, "... one byte more: refused");
		big[NSRPAM_ANSWER_MAX] = 'x';
		ok(feed(big, sizeof(big), c, buf, sizeof(buf), &l) ==
		   -EMSGSIZE, "... and without a newline");
	}
}

/* A scripted server: accepts one client, records what it sent into
 * tmpdir/got, then does MODE: "ok" answer, "silent", "close", "junk". */
static pid_t server(const char *path, const char *mode, int sockmode)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int lfd, c, fd;
	pid_t pid;

	unlink(path);
	strcpy(sun.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, (mode_t)sockmode) < 0 || listen(lfd, 4) < 0)
		return -1;
	pid = fork();
	if (pid != 0) {
		close(lfd);
		return pid;
	}
	c = accept(lfd, NULL, NULL);
	if (c < 0)
		_exit(1);
	{
		char buf[512], gotp[128];
		ssize_t n, have = 0;

		if (!strcmp(mode, "close"))
			_exit(0);
		while ((n = read(c, buf + have, sizeof(buf) - 1 - (size_t)have)) > 0)
			have += n;
		snprintf(gotp, sizeof(gotp), "%s/got", tmpdir);
		fd = open(gotp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			if (write(fd, buf, (size_t)have) < 0)
				_exit(1);
			close(fd);
		}
		if (!strcmp(mode, "ok")) {
			const char *a = "ok alice u-alice 2\n";

			if (write(c, a, strlen(a)) < 0)
				_exit(1);
		} else if (!strcmp(mode, "junk")) {
			/* past NSRPAM_ANSWER_MAX, never a newline */
			memset(buf, 'x', sizeof(buf));
			for (n = 0; n < 2 * NSRPAM_ANSWER_MAX / 512 + 1; n++)
				if (write(c, buf, sizeof(buf)) < 0)
					break;
		} else if (!strcmp(mode, "long")) {
			/* an ok line of 3 KiB, as a daemon lists failed
			 * listeners (one before 0.5 wrote every one) */
			const char *a = "ok alice u-alice listeners 1/80: ";

			if (write(c, a, strlen(a)) < 0)
				_exit(1);
			memset(buf, 'r', sizeof(buf));
			for (n = 0; n < 6; n++)
				if (write(c, buf, sizeof(buf)) < 0)
					_exit(1);
			if (write(c, "\n", 1) < 0)
				_exit(1);
		} else if (!strcmp(mode, "silent")) {
			pause();
		}
	}
	_exit(0);
}

static void reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_ask(void)
{
	struct nsrpam_opts o;
	char path[100], got[128] = "", line[NSRPAM_LINE_MAX], ns[64];
	int fd0 = nfds(), r, fd;
	long long t0;
	pid_t pid;
	ssize_t n;

	args(&o, "timeout=300ms", NULL);
	o.socket_uid = getuid();
	snprintf(path, sizeof(path), "%s/c.sock", tmpdir);
	snprintf(o.socket, sizeof(o.socket), "%s", path);

	pid = server(path, "ok", 0600);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	ok(r == 0, "ask: answered (%s)", r ? why : "ok");
	is_str(line, "ok alice u-alice 2", "... the answer line");
	waitpid(pid, NULL, 0);
	snprintf(got, sizeof(got), "%s/got", tmpdir);
	fd = open(got, O_RDONLY);
	n = fd >= 0 ? read(fd, got, sizeof(got) - 1) : -1;
	got[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	is_str(got, "provision alice\n", "... the request, exactly one line");

	r = nsrpam_ask(&o, "a\nprovision root", line, sizeof(line), why,
		       sizeof(why));
	is_int(r, -EINVAL, "a user name with a newline never reaches the socket");

	pid = server(path, "silent", 0600);
	t0 = ms_now();
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	is_int(r, -ETIMEDOUT, "a silent daemon: timed out (%s)", why);
	ok(ms_now() - t0 >= 290 && ms_now() - t0 < 2000,
	   "... after the timeout (%lld ms)", ms_now() - t0);
	reap(pid);

	pid = server(path, "close", 0600);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	ok(r < 0 && r != -ETIMEDOUT, "a hang-up without an answer: %s", why);
	reap(pid);

	pid = server(path, "junk", 0600);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	is_int(r, -EMSGSIZE, "an endless line: refused (%s)", why);
	reap(pid);

	pid = server(path, "long", 0600);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	ok(r == 0, "a 3 KiB answer: read (%s)", r ? why : "ok");
	is_int((int)strlen(line), NSRPAM_LINE_MAX - 1, "... its beginning kept");
	ok(!strncmp(line, "ok alice u-alice listeners 1/80: rrr", 36),
	   "... as it came");
	ok(answer(line, ns, sizeof(ns)) == 0 && !strcmp(ns, "u-alice"),
	   "... and it names the namespace");
	reap(pid);

	pid = server(path, "ok", 0660);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	ok(r == 0, "a socket its group may use (0660, control.group): "
	   "accepted (%s)", r ? why : "ok");
	reap(pid);

	pid = server(path, "ok", 0666);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	is_int(r, -EPERM, "a socket others can write to: refused (%s)", why);
	reap(pid);

	pid = server(path, "ok", 0604);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	is_int(r, -EPERM, "a socket others can read: refused (%s)", why);
	reap(pid);

	o.socket_uid = getuid() + 1;
	pid = server(path, "ok", 0600);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	is_int(r, -EPERM, "a socket of another owner: refused (%s)", why);
	reap(pid);
	o.socket_uid = getuid();

	unlink(path);
	r = nsrpam_ask(&o, "alice", line, sizeof(line), why, sizeof(why));
	is_int(r, -ENOENT, "no daemon: ENOENT (%s)", why);

	is_int(nfds(), fd0, "no descriptor left open");
}

static void test_open_ns(void)
{
	struct nsrpam_opts o;
	char file[128];
	int fd, fd0 = nfds();

	args(&o, NULL, NULL);
	snprintf(o.dir, sizeof(o.dir), "%s", tmpdir);
	snprintf(file, sizeof(file), "%s/plain", tmpdir);
	fd = open(file, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0)
		close(fd);
	fd = nsrpam_open_ns(&o, "plain", why, sizeof(why));
	if (getuid() == 0)
		ok(fd == -EINVAL && strstr(why, "not a namespace"),
		   "a plain file is not a namespace (%s)", why);
	else
		is_int(fd, -EPERM, "a directory not root's: refused (%s)", why);
	if (symlink("/proc/self/ns/net", file) < 0 && errno == EEXIST) {
		unlink(file);
		if (symlink("/proc/self/ns/net", file) < 0)
			diag("symlink: %s", strerror(errno));
	}
	fd = nsrpam_open_ns(&o, "plain", why, sizeof(why));
	ok(fd < 0, "a symlink to a namespace is not followed (%s)", why);
	fd = nsrpam_open_ns(&o, "..", why, sizeof(why));
	is_int(fd, -EINVAL, "\"..\" refused");
	unlink(file);
	snprintf(o.dir, sizeof(o.dir), "/proc/self");
	fd = nsrpam_open_ns(&o, "ns", why, sizeof(why));
	ok(fd < 0, "a directory is not a namespace (%s)", why);
	is_int(nfds(), fd0, "no descriptor left open");
}

int main(void)
{
	char got[128];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/pamtest.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_args();
	test_names();
	test_answers();
	test_line();
	test_ask();
	test_open_ns();
	snprintf(got, sizeof(got), "%s/got", tmpdir);
	unlink(got);
	rmdir(tmpdir);
	return done_testing();
}
