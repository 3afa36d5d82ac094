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
 * namespace directory (NULL: the host's).  Returns 0 with, for each
 * address, fds[i] (or -1 and errs[i], steps[i] saying why) and the
 * namespace's identity in *id; or the namespace's own -errno as
 * netns_open() returns it (with a reason in WHY).  From the loop thread. */
int privc_listen(struct privc *pc, const char *ns,
		 const struct config_sockaddr *const *addrs, size_t n,
		 int *fds, int *errs, enum priv_step *steps,
		 struct netns_id *id, char *why, size_t whylen);

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
