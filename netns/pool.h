/* SPDX-License-Identifier: MIT */
/* pool: where provisioned names and addresses come from (pure, libc only).
 *
 * A pool is three name templates, a uid base and two address pools.  A user
 * and an index derive one struct prov_spec: the namespace's file name, the
 * names of both veth ends, and their IPv4 /30 and IPv6 /64 addresses.
 * Nothing here touches the kernel, allocates, or logs: the config loader
 * links this file alone to check pools and templates at load time.
 */
#ifndef NSRELAY_POOL_H
#define NSRELAY_POOL_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROV_DEFAULT_NETNS_DIR	"/run/netns"

/* Templates: %u user name, %i index, %U uid, %% a percent sign. */
#define PROV_DEFAULT_NS_TMPL	"%u"		/* the namespace */
#define PROV_DEFAULT_HOST_TMPL	"nsr%i"		/* host end: <= 8 bytes */
#define PROV_DEFAULT_PEER_TMPL	"veth0"		/* end inside the namespace */
#define PROV_DEFAULT_UID_BASE	1000
#define PROV_DEFAULT_V4_POOL	"100.64.0.0/10"
#define PROV_DEFAULT_V6_POOL	"fd75:6272:7370::/48"
#define PROV_TMPL_MAX		64		/* with the final NUL */
#define PROV_V4_PLEN_MIN	1
#define PROV_V4_PLEN_MAX	24
#define PROV_INDEX_MAX		65536		/* IPv6: 16 bits of index */

/* Where names and addresses come from.  IPv4: index i owns the /24 number i
 * of the pool and uses its first /30: host = pool + 256 * i + 1, namespace =
 * pool + 256 * i + 2 (100.64.9.1 and 100.64.9.2 for index 9 in the default
 * pool).  IPv6: pool:<i in hex>::1 and ::2, /64.  Capacity: 2^(24 - v4_plen)
 * indexes (16384 for a /10), at most PROV_INDEX_MAX (a pool wider than /8
 * is used from its start). */
struct prov_pool {
	char ns_tmpl[PROV_TMPL_MAX];
	char host_tmpl[PROV_TMPL_MAX];
	char peer_tmpl[PROV_TMPL_MAX];
	uint32_t uid_base;		/* default index = uid - uid_base */
	struct in_addr v4_base;		/* network address of the pool */
	unsigned v4_plen;		/* PROV_V4_PLEN_MIN..MAX */
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
	uint32_t uid;			/* the user's, as derived from (not
					 * compared: a name's uid may change) */
};

/* Fill pool with the defaults above. */
void prov_pool_init(struct prov_pool *pool);

/* Set a template (which: 'n' namespace, 'h' host end, 'p' namespace end).
 * Returns 0, -EINVAL (empty, a % not followed by u, i, U or %, or an
 * unknown which) or -ENAMETOOLONG (PROV_TMPL_MAX bytes or more).
 * pool is unchanged on error. */
int prov_pool_set_tmpl(struct prov_pool *pool, char which, const char *tmpl);

/* Set the IPv4 pool from "A.B.C.D/N" or the IPv6 pool from "X:X::/48".
 * Returns 0, -EINVAL (not an address/prefix), -ERANGE (IPv4: N outside
 * PROV_V4_PLEN_MIN..MAX; IPv6: N not 48) or -EADDRNOTAVAIL (host bits set).
 * pool is unchanged on error. */
int prov_pool_set_v4(struct prov_pool *pool, const char *cidr);
int prov_pool_set_v6(struct prov_pool *pool, const char *cidr);

/* Why prov_pool_set_tmpl/_v4/_v6 refused a value: err is what they
 * returned, which the setting ('4' or 4 the IPv4 pool, '6' or 6 the IPv6
 * pool, 'n', 'h' or 'p' a template).  A static string, never NULL. */
const char *prov_pool_strerror(int err, char which);

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

/* Whether the names of spec are terminated and valid (as derived). */
bool prov_spec_valid(const struct prov_spec *spec);

/* Whether two specs describe the same namespace, names and addresses. */
bool prov_spec_equal(const struct prov_spec *a, const struct prov_spec *b);

#endif
