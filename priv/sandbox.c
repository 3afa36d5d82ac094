/* SPDX-License-Identifier: MIT */
/* sandbox: what each process of nsrelayd may do.
 *
 * Theory of operation
 *
 * Capabilities.  The engine has none: CapEff, CapPrm, CapInh, CapAmb and
 * CapBnd all 0 once it runs as its user.  The helper stays uid 0 (the
 * namespace directory, the hosts and state files are root's: no
 * CAP_DAC_OVERRIDE or CAP_CHOWN needed) with CAP_SYS_ADMIN (setns, unshare,
 * mount), CAP_NET_BIND_SERVICE (ports below 1024 inside namespaces) and,
 * with provisioning, CAP_NET_ADMIN (rtnetlink).  Both set no_new_privs.
 *
 * Seccomp.  An allow-list for each, installed before the first byte from a
 * client (engine) or the first request (helper); a call outside it kills
 * the process (SECCOMP_RET_KILL_PROCESS: the kernel logs the call, systemd
 * logs "code=killed, status=31/SYS", the other process exits).  The lists
 * were made from the system calls the whole test suite and the benchmarks
 * make (strace -f -c, and NSRELAY_SECCOMP=log with the kernel's log),
 * glibc's and libevent's, NSS modules' (files, systemd, sss: sockets and
 * files), and nothing else.  The engine never enters a namespace, mounts,
 * traces, loads code or keys, or executes anything: no setns, unshare,
 * mount, ptrace, bpf, *_module, keyctl, process_vm_*, execve.  Where an
 * argument narrows a call cheaply it is checked: clone only for threads,
 * socket only for the families of the unit's RestrictAddressFamilies=,
 * mmap and mprotect never both writable and executable.
 *
 * Built with the sanitizers, LeakSanitizer stops the world with ptrace at
 * exit, from a process clone that lists /proc/self/task with the legacy
 * open and getdents: those builds allow these four, and only those.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include <seccomp.h>

#include "priv/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define NSR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NSR_SANITIZED 1
#endif
#endif
#ifndef NSR_SANITIZED
#define NSR_SANITIZED 0
#endif

/* ------------------------------------------------------------ caps */

static int caps_keep(const int *keep, size_t n)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	for (int cap = 0; cap <= 63; cap++) {
		bool k = false;

		for (size_t i = 0; i < n; i++)
			k |= keep[i] == cap;
		/* only what is still there: without CAP_SETPCAP (a user
		 * already) nothing can be dropped, and nothing must be */
		if (!k && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return -errno;
	memset(data, 0, sizeof(data));
	for (size_t i = 0; i < n; i++) {
		data[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
		data[keep[i] / 32].effective |= 1u << (keep[i] % 32);
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------ lists */

/* Calls both processes make: memory, threads, time, signals, descriptors,
 * the standard library's own. */
static const int common[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(close), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(lseek),
	SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup3), SCMP_SYS(openat),
	SCMP_SYS(getdents64), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
	SCMP_SYS(statfs), SCMP_SYS(fstatfs), SCMP_SYS(ioctl),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mincore),
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
	SCMP_SYS(rseq), SCMP_SYS(set_tid_address), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(getrandom),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday), SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(restart_syscall),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(getgroups), SCMP_SYS(getresuid),
	SCMP_SYS(getresgid), SCMP_SYS(uname), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(umask),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(tgkill),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(pipe2),
	SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
	SCMP_SYS(recvfrom), SCMP_SYS(socketpair), SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	SCMP_SYS(shutdown), SCMP_SYS(connect), SCMP_SYS(mmap),
	SCMP_SYS(mprotect),
};

/* The engine: the event loop, the relay, the control socket, /metrics,
 * the config, NSS, journald, sd_notify, inotify, its worker threads. */
static const int engine[] = {
	SCMP_SYS(accept4), SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(eventfd2),
	SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(splice), SCMP_SYS(inotify_init1),
	SCMP_SYS(inotify_add_watch), SCMP_SYS(inotify_rm_watch),
	SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(memfd_create),
	SCMP_SYS(ftruncate), SCMP_SYS(fsync), SCMP_SYS(fdatasync),
	SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	SCMP_SYS(sysinfo), SCMP_SYS(wait4), SCMP_SYS(kill),
	SCMP_SYS(prctl), SCMP_SYS(select), SCMP_SYS(pselect6),
	SCMP_SYS(getcwd), SCMP_SYS(socket), SCMP_SYS(clone),
	SCMP_SYS(clone3), SCMP_SYS(mkdir), SCMP_SYS(mkdirat),
};

/* The helper: namespaces, mounts, the files, rtnetlink. */
static const int helper[] = {
	SCMP_SYS(socket), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(setns),
	SCMP_SYS(unshare), SCMP_SYS(mount), SCMP_SYS(umount2),
	SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(unlink),
	SCMP_SYS(unlinkat), SCMP_SYS(renameat), SCMP_SYS(renameat2),
	SCMP_SYS(fchown), SCMP_SYS(fchownat), SCMP_SYS(fchmod),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(flock),
	SCMP_SYS(clone), SCMP_SYS(clone3),
};

static int add_all(scmp_filter_ctx ctx, const int *sys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sys[i], 0);

		if (r < 0 && r != -EEXIST)
			return r;
	}
	return 0;
}

/* clone: threads only (CLONE_THREAD in the flags), except under the
 * sanitizers; clone3 cannot be looked into: it answers ENOSYS, and glibc
 * then falls back to clone. */
static int add_clone(scmp_filter_ctx ctx)
{
	int r;

	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r < 0)
		return r;
	if (NSR_SANITIZED)
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone),
					0);
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
					CLONE_THREAD));
}

/* mmap and mprotect never writable and executable at once */
static int add_memory(scmp_filter_ctx ctx)
{
	int r;

	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
			     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC,
				     PROT_WRITE));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE,
					     0));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ,
					     PROT_WRITE | PROT_EXEC, PROT_WRITE));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE,
					     0));
	return r;
}

/* socket: the families the daemon uses (AF_UNIX, AF_INET, AF_INET6,
 * AF_NETLINK) */
static int add_socket(scmp_filter_ctx ctx)
{
	static const int fam[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };
	int r = 0;

	for (size_t i = 0; i < 4 && !r; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fam[i]));
	return r;
}

static bool argfiltered(int sys)
{
	return sys == SCMP_SYS(clone) || sys == SCMP_SYS(clone3) ||
	       sys == SCMP_SYS(mmap) || sys == SCMP_SYS(mprotect) ||
	       sys == SCMP_SYS(socket);
}

static int load(const int *own, size_t nown, bool log_only)
{
	scmp_filter_ctx ctx;
	int r;

	ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	/* every call runs the filter: a binary tree of the call numbers,
	 * a few comparisons, not a list of 120 */
	if (!r)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (size_t i = 0; !r && i < sizeof(common) / sizeof(common[0]); i++)
		if (!argfiltered(common[i]))
			r = add_all(ctx, &common[i], 1);
	for (size_t i = 0; !r && i < nown; i++)
		if (!argfiltered(own[i]))
			r = add_all(ctx, &own[i], 1);
	if (!r)
		r = add_clone(ctx);
	if (!r)
		r = add_memory(ctx);
	if (!r)
		r = add_socket(ctx);
	/* LeakSanitizer's tracer, at exit: ptrace, and the legacy open and
	 * getdents of its raw system calls (listing /proc/self/task) */
	if (!r && NSR_SANITIZED)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ptrace), 0);
	if (!r && NSR_SANITIZED)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 0);
	if (!r && NSR_SANITIZED)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getdents), 0);
	if (!r)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int sandbox_engine_filter(bool log_only)
{
	return load(engine, sizeof(engine) / sizeof(engine[0]), log_only);
}

int sandbox_engine(void)
{
	const char *e = getenv("NSRELAY_SECCOMP");
	int r;

	r = caps_keep(NULL, 0);
	if (r)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return sandbox_engine_filter(e && !strcmp(e, "log"));
}

int sandbox_helper(bool provisioning)
{
	static const int keep[] = {
		CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN,
	};
	const char *e = getenv("NSRELAY_SECCOMP");
	int r;

	r = caps_keep(keep, provisioning ? 3 : 2);
	if (r)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (!NSR_SANITIZED && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return load(helper, sizeof(helper) / sizeof(helper[0]),
		    e && !strcmp(e, "log"));
}
