/* SPDX-License-Identifier: MIT */
/* provision: create and wire a user's network namespace over netlink.
 *
 * A namespace is bound at DIR/NAME the way `ip netns add` does it, and
 * joined to the host by a veth pair: the host end stays on the host, the
 * other end lives in the namespace.  Each end gets an IPv4 /30 address
 * (host .1, namespace .2) and an IPv6 /64 address (host ::1, namespace ::2);
 * lo and both ends are up, and the namespace has IPv4 and IPv6 default
 * routes via the host end.
 *
 * Addresses and names come from a pool and an index (netns/pool.h: struct
 * prov_pool, prov_spec_derive()); everything else is asynchronous, in an
 * event loop.  The namespace directory must be a directory owned by root
 * and not writable by group or others (else every job fails, saying so);
 * no symbolic link in it is ever followed.
 * Never logs above debug (it does not log at all), never exits.
 */
#ifndef NSRELAY_PROVISION_H
#define NSRELAY_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netns/pool.h"	/* struct prov_pool, struct prov_spec */

struct event_base;
struct netns_id;
struct prov;

/* What provisioning does with privilege, done for it: by the privileged
 * helper (the daemon: engine/privc.c), or by the caller itself as root
 * (NULL ops: netns/nsops.c directly; t/tools/nsprov).  A namespace opened
 * for provisioning is known by a handle, which is what its requests put
 * where the kernel wants a namespace's descriptor (NETNSA_FD,
 * IFLA_NET_NS_FD): the descriptor itself when done directly, a number the
 * helper's gate replaces by its descriptor otherwise.
 *   ns_open    nsops_open() of the provisioner's directory: 0 or 1
 *              (created) and *handle, *id; or -errno with WHY.  Blocks
 *              (a namespace is created): called on the worker;
 *   ns_remove  nsops_remove(); on the worker;
 *   ns_close   forget a handle (from the loop, or the worker: WORKER);
 *   nl_socket  an rtnetlink socket in the host's namespace (HANDLE -1) or
 *              HANDLE's: a descriptor to send requests on and read answers
 *              from, and *portid; -errno. */
struct prov_privops {
	int (*ns_open)(void *ctx, const char *name, unsigned flags,
		       int *handle, struct netns_id *id, char *why,
		       size_t len);
	int (*ns_remove)(void *ctx, const char *name, char *why, size_t len);
	void (*ns_close)(void *ctx, bool worker, int handle);
	int (*nl_socket)(void *ctx, bool worker, int handle,
			 uint32_t *portid);
	void *ctx;
};

/* Called exactly once per prov_provision()/prov_deprovision() call, from the
 * event loop (never from inside the call that started it).  err is 0 or
 * -errno; msg is NULL on success, else "step: what happened" (valid during
 * the call only). */
typedef void (*prov_cb)(void *arg, int err, const char *msg);

/* A provisioner on base, for namespaces under netns_dir (NULL = the default;
 * the string is copied), its privileged calls made by OPS (copied; NULL:
 * itself, then it calls netns_host_init(): the calling thread's network
 * namespace is "the host").  Opens a netlink socket.  Returns NULL with
 * errno set. */
struct prov *prov_new(struct event_base *base, const char *netns_dir,
		      const struct prov_privops *ops);

/* Cancel everything: every pending callback runs with -ECANCELED, then the
 * provisioner is released.  Accepts NULL; safe from inside a callback. */
void prov_free(struct prov *prov);

/* Per-netlink-request timeout in ms (0 = default, 5000), and how many
 * namespaces are worked on at once (0 = default, 32); more wait in a queue
 * (a deprovision that only waits for the kernel to tear its namespace down
 * holds no descriptor and no longer counts).  Affect requests and jobs
 * started afterwards. */
void prov_set_timeout(struct prov *prov, unsigned ms);
void prov_set_parallel(struct prov *prov, unsigned n);

/* Make the namespace of spec exist and be wired as described (adopting and
 * completing what is already there, changing nothing that already matches;
 * a conflicting piece is an error, not replaced).  Calls for the same name
 * are serialized; a call while an identical one waits or runs shares its
 * result; a call for a namespace this provisioner already made ready (and
 * whose file still holds the same namespace) succeeds without any netlink
 * work.  Returns 0 (cb will run) or -errno (-ESHUTDOWN, -ENOMEM; cb will
 * not run).  spec is copied. */
int prov_provision(struct prov *prov, const struct prov_spec *spec,
		   prov_cb cb, void *arg);

/* Forget that NAME was made ready, so that the next prov_provision() for
 * it reads and reconciles everything again (after something outside
 * changed it).  Work in progress is not affected. */
void prov_forget(struct prov *prov, const char *name);

/* Remove what provisioning creates: the veth pair (only if its peer is in
 * this namespace) and the namespace's bind mount and file.  A namespace that
 * is not there is success.  Same return and callback rules.
 * The veth goes with the namespace: the file is removed first, the kernel
 * tears the namespace down (many per batch) and deletes both ends, and the
 * callback runs once the host end is gone (with prov_set_early(), once the
 * file is gone).  A namespace that something
 * else keeps alive (a process inside, a socket made in it: close listeners
 * there when its file goes) does not die: its host end is then deleted
 * explicitly, after about 2 s without progress, so the callback comes late
 * but the result is the same. */
int prov_deprovision(struct prov *prov, const struct prov_spec *spec,
		     prov_cb cb, void *arg);

/* Answer deprovisions early, as `ip netns del` returns: the callback runs
 * once the namespace's file is gone, and the job goes on in the background
 * until the kernel has taken the veth (or it was deleted explicitly),
 * holding the name meanwhile: a later call for the same name still waits
 * for it.  Namespaces removed one call at a time then die in the kernel's
 * batches instead of one grace period each.  A failure after the answer
 * (the host end could not be deleted) is reported to late(arg, ns, msg).
 * Off by default. */
typedef void (*prov_late_cb)(void *arg, const char *ns, const char *msg);
void prov_set_early(struct prov *prov, prov_late_cb late, void *arg);

#endif
