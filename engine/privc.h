/* SPDX-License-Identifier: MIT */
/* privc: the engine's side of the privileged helper (priv/helper.c): it is
 * started here, asked here, and its end noticed here. */
#ifndef NSRELAY_PRIVC_H
#define NSRELAY_PRIVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netns/netns.h"
#include "priv/proto.h"

struct config;
struct config_sockaddr;
struct event_base;
struct privc;

/* Fork the helper, with CFG as it is now: call as root, before dropping
 * privileges and before any other thread exists.  NULL on failure (fatal
 * for the caller), with *err. */
struct privc *privc_start(const struct config *cfg, int *err);

/* Watch the helper from BASE: when it goes (its end of the loop channel
 * closes), GONE(ARG) runs; the daemon then exits non-zero.  0 or
 * -ENOMEM. */
int privc_watch(struct privc *pc, struct event_base *base,
		void (*gone)(void *arg), void *arg);

/* Close the channels, wait for the helper to exit, free.  NULL is
 * fine. */
void privc_free(struct privc *pc);

/* Listening sockets for the N addresses ADDRS in the namespace NS of the
 * namespace directory (NULL: the host's); bound UDP sockets where
 * DGRAM[i].  Returns 0 with, for each
 * address, fds[i] (or -1 and errs[i], steps[i] saying why) and the
 * namespace's identity in *id; or the namespace's own -errno as
 * netns_open() returns it (with a reason in WHY).  From the loop thread. */
int privc_listen(struct privc *pc, const char *ns,
		 const struct config_sockaddr *const *addrs, const bool *dgram,
		 size_t n,
		 int *fds, int *errs, enum priv_step *steps,
		 struct netns_id *id, char *why, size_t whylen);

/* LISTENs sent ahead: privc_listen_send() sends up to PRIVC_BATCH_MAX
 * requests and returns; the helper works on them while the engine does
 * other work (opens the listeners of the previous batch), and
 * privc_listen_recv() collects the answers into the entries, as
 * privc_listen() gives them: ret (0 or the namespace's -errno), fds,
 * errs, steps, id and why; sent says whether an entry was asked at all.
 * Any other call on the loop's channel collects them first, so the
 * entries must stay valid until privc_listen_recv().  At start-up with
 * thousands of namespaces this replaces a round trip each, both processes
 * waiting for the other to be woken, by two overlapping streams.  The
 * unix socket queues at most net.unix.max_dgram_qlen (10 by default)
 * datagrams: a batch stays under it, so neither side ever blocks on the
 * other's full queue.  From the loop thread. */
#define PRIVC_BATCH_MAX	8
struct privc_listen {
	/* in */
	const char *ns;
	const struct config_sockaddr *const *addrs;
	const bool *dgram;
	size_t n;
	/* out */
	bool sent;
	int ret;
	int fds[PRIV_LISTEN_MAX], errs[PRIV_LISTEN_MAX];
	enum priv_step steps[PRIV_LISTEN_MAX];
	struct netns_id id;
	char why[PRIV_WHY_MAX];
};
void privc_listen_send(struct privc *pc, struct privc_listen *const *b,
		       size_t n);
void privc_listen_recv(struct privc *pc);

/* Provisioning (the privileged operations of netns/provision.h): from
 * any thread; WORKER says which channel (the loop's, or the workers'). */
int privc_ns_open(struct privc *pc, bool worker, const char *ns,
		  unsigned flags, uint32_t *handle, struct netns_id *id,
		  char *why, size_t whylen);
int privc_ns_remove(struct privc *pc, bool worker, const char *ns,
		    char *why, size_t whylen);
void privc_ns_close(struct privc *pc, bool worker, uint32_t handle);
/* An rtnetlink socket behind the gate: the descriptor, *portid. */
int privc_nl_open(struct privc *pc, bool worker, uint32_t handle,
		  uint32_t *portid);
/* Provisioning's privileged calls (netns/provision.h), made by PC. */
struct prov_privops;
const struct prov_privops *privc_prov_ops(struct privc *pc);

/* Replace the hosts or state file with the records in MEMFD. */
int privc_file_write(struct privc *pc, enum priv_file which, int memfd,
		     char *why, size_t whylen);
#endif
