/* SPDX-License-Identifier: MIT */
/* sandbox_test: the engine's seccomp list, installed in a child: what the
 * engine must never do kills it (SIGSYS), what it does goes on.  Needs no
 * privilege: a child may always install a filter after no_new_privs. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "priv/sandbox.h"
#include "t/unit/tap.h"

/* Run FN in a child under the engine's filter: its wait status. */
static int under_filter(void (*fn)(void))
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    sandbox_engine_filter(false) < 0)
			_exit(99);
		fn();
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return st;
}

static bool killed_by_sys(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static void do_setns(void)
{
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

	(void)setns(fd, CLONE_NEWNET);
}
static void do_unshare(void) { (void)unshare(CLONE_NEWNET); }
static void do_mount(void) { (void)mount("none", "/tmp", "tmpfs", 0, NULL); }
static void do_ptrace(void) { (void)ptrace(PTRACE_TRACEME, 0, NULL, NULL); }
static void do_execve(void)
{
	char *argv[] = { (char *)"/bin/true", NULL };

	execve("/bin/true", argv, NULL);
}
static void do_bpf(void) { (void)syscall(SYS_bpf, 0, NULL, 0); }
static void do_keyctl(void) { (void)syscall(SYS_keyctl, 0, 0, 0, 0, 0); }
static void do_wx(void)
{
	/* writable and executable at once */
	(void)mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
static void do_packet(void) { (void)socket(AF_PACKET, SOCK_RAW, 0); }
static void do_fork(void)
{
	if (fork() == 0)
		_exit(0);
}
static void do_work(void)
{
	/* what the engine does all day */
	int sv[2];
	char c = 'x';

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    write(sv[0], &c, 1) != 1 || read(sv[1], &c, 1) != 1)
		_exit(1);
	close(sv[0]);
	close(sv[1]);
	if (socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0) < 0)
		_exit(2);
	(void)getpid();
	free(malloc(1 << 20));
}

int main(void)
{
	static const struct {
		void (*fn)(void);
		const char *what;
	} bad[] = {
		{ do_setns, "setns(CLONE_NEWNET)" },
		{ do_unshare, "unshare(CLONE_NEWNET)" },
		{ do_mount, "mount" },
		{ do_ptrace, "ptrace" },
		{ do_execve, "execve" },
		{ do_bpf, "bpf" },
		{ do_keyctl, "keyctl" },
		{ do_wx, "a writable and executable mapping" },
		{ do_packet, "an AF_PACKET socket" },
		{ do_fork, "fork (a process, not a thread)" },
	};
	int st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st = under_filter(bad[i].fn);
#if defined(__SANITIZE_ADDRESS__)
		/* the sanitizers need ptrace and a process clone */
		if (bad[i].fn == do_ptrace || bad[i].fn == do_fork) {
			ok(1, "%s: allowed under the sanitizers", bad[i].what);
			continue;
		}
#endif
		ok(killed_by_sys(st), "%s kills the engine (status %#x)",
		   bad[i].what, st);
	}
	st = under_filter(do_work);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "sockets, I/O and memory go on (status %#x)", st);
	return done_testing();
}
