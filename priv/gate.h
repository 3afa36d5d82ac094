/* SPDX-License-Identifier: MIT */
/* gate: what provisioning may ask of rtnetlink, checked before the helper
 * sends it.  The engine builds its requests with libmnl and runs the
 * provisioning state machine; every request passes here on its way to the
 * kernel, on the helper's socket of the host's namespace or of a namespace
 * the helper opened for provisioning.  Pure but for one callback: handles
 * the engine writes where a namespace descriptor goes (NETNSA_FD,
 * IFLA_NET_NS_FD) are replaced by the helper's descriptors, and a handle
 * it did not give out is refused. */
#ifndef NSRELAY_PRIV_GATE_H
#define NSRELAY_PRIV_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netns/pool.h"

enum gate_sock {
	GATE_HOST,	/* the helper's socket in its own (the host's) namespace */
	GATE_NS,	/* one in a namespace it opened for provisioning */
};

/* The helper's descriptor of namespace HANDLE, or -1 if it gave out no
 * such handle. */
typedef int (*gate_fd_fn)(void *arg, uint32_t handle);

/* Check the datagram of LEN bytes at MSG, meant for a socket of KIND,
 * against what provisioning with POOL (templates and address pools) may
 * do, rewriting namespace handles in it (FD_OF).  One request per
 * datagram.  Returns 0 (send it), or -EPERM with the reason in WHY. */
int gate_check(const struct prov_pool *pool, enum gate_sock kind, void *msg,
	       size_t len, gate_fd_fn fd_of, void *arg, char *why,
	       size_t whylen);

/* Does NAME match the template TMPL (netns/pool.h: %u a user name, %U a
 * uid and %i an index, digits, %% a percent sign)? */
bool gate_name_matches(const char *tmpl, const char *name);
#endif
