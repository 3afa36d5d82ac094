/* SPDX-License-Identifier: MIT */
/* nsops: the calls that need privilege (CAP_SYS_ADMIN, CAP_NET_ADMIN,
 * CAP_NET_BIND_SERVICE, root's files), in one place: listening sockets
 * inside namespaces, the namespace files of provisioning (open, create as
 * `ip netns add` does, remove), and rtnetlink sockets inside them.  The
 * privileged helper (priv/) makes them for the daemon's engine; t/tools/nsprov
 * makes them itself, as root.  Never logs; -errno, with a reason where one
 * helps. */
#ifndef NSRELAY_NSOPS_H
#define NSRELAY_NSOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netns/netns.h"

/* The steps of making a listening socket (what failed). */
enum nsops_step {
	NSOPS_STEP_SOCKET = 1,
	NSOPS_STEP_SETSOCKOPT,
	NSOPS_STEP_BIND,
	NSOPS_STEP_LISTEN,
};

/* A TCP socket inside the namespace NSFD (-1: the caller's), with the
 * listeners' options (SO_REUSEADDR, TCP_NODELAY which accepted sockets
 * inherit, IP_FREEBIND so that it binds before the namespace's lo is up,
 * IPV6_V6ONLY), bound to SA and listening (backlog SOMAXCONN).  The fd
 * (non-blocking, close-on-exec) or -errno with *step. */
int nsops_listen(int nsfd, const struct sockaddr *sa, socklen_t len,
		 enum nsops_step *step);
/* The same for the N addresses SA (of lengths SALEN), entering the
 * namespace once for all of them: RES[i] the fd or -errno with STEPS[i].
 * Where DGRAM[i], a UDP socket instead, bound and not listening, without
 * SO_REUSEADDR (which would let another socket share its port). */
void nsops_listen_all(int nsfd, const struct sockaddr *const *sa,
		      const socklen_t *salen, const bool *dgram, size_t n,
		      int *res, enum nsops_step *steps);

/* Open the namespace NAME of DIR for provisioning.
 *   NSOPS_CREATE  missing: create it as `ip netns add` does (DIR made 0755
 *                 and a shared mount; the file O_EXCL mode 0; a new
 *                 namespace bind-mounted on that very file);
 *   NSOPS_STALE   an empty mode-0 file is the leftover of a creation that
 *                 crashed between the file and the mount: remove it (and
 *                 create, with NSOPS_CREATE).
 * DIR must be a directory owned by root that nobody else may write to, and
 * no symbolic link is ever followed.  Returns 0 (*nsfd the existing one),
 * 1 (created), or -errno: -ENOENT (missing, without CREATE), -EAGAIN (an
 * empty file: `ip netns add` half-way, look again; or a stale leftover,
 * without STALE), -EEXIST (something that is not a namespace), -EPERM (an
 * unsafe directory); WHY says what. */
#define NSOPS_CREATE	1u
#define NSOPS_STALE	2u
int nsops_open(const char *dir, const char *name, unsigned flags, int *nsfd,
	       struct netns_id *id, char *why, size_t len);

/* `ip netns del`: unmount DIR/NAME (never following a link) and remove the
 * file; a name that is not there is success.  0 or -errno with WHY. */
int nsops_remove(const char *dir, const char *name, char *why, size_t len);

/* Whether DIR is safe: a directory (not a link), owned by root, not
 * writable by group or others; a missing one is (it is made 0755).  0 or
 * -errno with WHY. */
int nsops_dir_check(const char *dir, char *why, size_t len);

/* An rtnetlink socket inside NSFD (-1: the caller's namespace), bound,
 * with extended acks, capped acks and strict checking, non-blocking and
 * close-on-exec.  The fd and *portid, or -errno. */
int nsops_nl_socket(int nsfd, uint32_t *portid);
#endif
