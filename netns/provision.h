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
 * Addresses and names come from a pool and an index (struct prov_pool,
 * prov_spec_derive()); everything else is asynchronous, in an event loop.
 * Never logs above debug (it does not log at all), never exits.
 */
#ifndef NSRELAY_PROVISION_H
#define NSRELAY_PROVISION_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct prov;

#define PROV_DEFAULT_NETNS_DIR	"/run/netns"

/* Templates: %u user name, %i index, %U uid, %% a percent sign. */
#define PROV_DEFAULT_NS_TMPL	"%u"		/* the namespace */
#define PROV_DEFAULT_HOST_TMPL	"nsr%i"		/* host end: <= 8 bytes */
#define PROV_DEFAULT_PEER_TMPL	"veth0"		/* end inside the namespace */
#define PROV_DEFAULT_UID_BASE	1000
#define PROV_DEFAULT_V4_POOL	"100.64.0.0/10"
#define PROV_DEFAULT_V6_POOL	"fd75:6272:7370::/48"
#define PROV_TMPL_MAX		64

/* Where names and addresses come from.  IPv4: index i owns the /24 number i
 * of the pool and uses its first /30: host = pool + 256 * i + 1, namespace =
 * pool + 256 * i + 2 (100.64.9.1 and 100.64.9.2 for index 9 in the default
 * pool).  IPv6: pool:<i in hex>::1 and ::2, /64.  Capacity: 2^(24 - v4_plen)
 * indexes (16384 for a /10), at most 65536. */
struct prov_pool {
	char ns_tmpl[PROV_TMPL_MAX];
	char host_tmpl[PROV_TMPL_MAX];
	char peer_tmpl[PROV_TMPL_MAX];
	uint32_t uid_base;		/* default index = uid - uid_base */
	struct in_addr v4_base;		/* network address of the pool */
	unsigned v4_plen;		/* 1..24 */
	struct in6_addr v6_base;	/* a /48 */
};

/* One namespace, fully described: what provisioning makes and checks. */
struct prov_spec {
	char ns[NAME_MAX + 1];		/* file name under the netns dir */
	char host_if[IFNAMSIZ];
	char ns_if[IFNAMSIZ];
	struct in_addr v4_host, v4_ns;
	unsigned v4_plen;		/* 30 */
	struct in6_addr v6_host, v6_ns;
	unsigned v6_plen;		/* 64 */
};

/* Called exactly once per prov_provision()/prov_deprovision() call, from the
 * event loop (never from inside the call that started it).  err is 0 or
 * -errno; msg is NULL on success, else "step: what happened" (valid during
 * the call only). */
typedef void (*prov_cb)(void *arg, int err, const char *msg);

/* Fill pool with the defaults above. */
void prov_pool_init(struct prov_pool *pool);

/* Set a template (which: 'n' namespace, 'h' host end, 'p' namespace end).
 * Returns 0, -EINVAL (unknown `which`, bad % sequence) or -ENAMETOOLONG. */
int prov_pool_set_tmpl(struct prov_pool *pool, char which, const char *tmpl);

/* Set the IPv4 pool from "A.B.C.D/N" (N in 1..24, host bits zero) or the
 * IPv6 pool from "X:X::/48" (host bits zero).  Returns 0 or -EINVAL. */
int prov_pool_set_v4(struct prov_pool *pool, const char *cidr);
int prov_pool_set_v6(struct prov_pool *pool, const char *cidr);

/* Number of indexes the pool can address (min of IPv4 and IPv6 capacity). */
uint32_t prov_pool_capacity(const struct prov_pool *pool);

/* Derive the spec of (user, uid, index); index < 0 means uid - uid_base.
 * Pure.  Returns 0, -ERANGE (index outside the pool, uid below uid_base),
 * -ENAMETOOLONG (an interface name over 15 bytes, a namespace name over
 * NAME_MAX: never truncated) or -EINVAL (empty user, a name with '/', a
 * space or ':', "." or ".."); errbuf (may be NULL) then says why. */
int prov_spec_derive(const struct prov_pool *pool, const char *user,
		     uint32_t uid, long index, struct prov_spec *spec,
		     char *errbuf, size_t errlen);

/* A provisioner on base, for namespaces under netns_dir (NULL = the default;
 * the string is copied).  Opens a netlink socket and keeps a descriptor of
 * the calling thread's network namespace ("the host").  Returns NULL with
 * errno set. */
struct prov *prov_new(struct event_base *base, const char *netns_dir);

/* Cancel everything: every pending callback runs with -ECANCELED, then the
 * provisioner is released.  Accepts NULL; safe from inside a callback. */
void prov_free(struct prov *prov);

/* Per-netlink-request timeout in ms (0 = default, 5000), and how many
 * namespaces are worked on at once (0 = default, 32); more wait in a queue.
 * Affect requests and jobs started afterwards. */
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
 * is not there is success.  Same return and callback rules. */
int prov_deprovision(struct prov *prov, const struct prov_spec *spec,
		     prov_cb cb, void *arg);

#endif
