/* SPDX-License-Identifier: MIT */
/* pool: templates, address pools and the spec of one namespace.
 *
 * Theory of operation
 *
 * Pure functions of their arguments: parse and check the settings of a pool
 * (templates, IPv4 and IPv6 pools), and derive from (pool, user, uid, index)
 * every name and address provisioning will use.  A derived name is never
 * truncated: one that does not fit is an error, with the reason in words.
 * Only libc: no event loop, no netlink, no logging (the config loader links
 * this file by itself).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/pool.h"

void prov_pool_init(struct prov_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
	snprintf(pool->ns_tmpl, sizeof(pool->ns_tmpl), "%s",
		 PROV_DEFAULT_NS_TMPL);
	snprintf(pool->host_tmpl, sizeof(pool->host_tmpl), "%s",
		 PROV_DEFAULT_HOST_TMPL);
	snprintf(pool->peer_tmpl, sizeof(pool->peer_tmpl), "%s",
		 PROV_DEFAULT_PEER_TMPL);
	pool->uid_base = PROV_DEFAULT_UID_BASE;
	(void)prov_pool_set_v4(pool, PROV_DEFAULT_V4_POOL);
	(void)prov_pool_set_v6(pool, PROV_DEFAULT_V6_POOL);
}

/* 0 if every % of tmpl starts a known sequence and tmpl is not empty. */
static int tmpl_check(const char *tmpl)
{
	const char *p;

	if (!*tmpl)
		return -EINVAL;
	for (p = tmpl; *p; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p != 'u' && *p != 'i' && *p != 'U' && *p != '%')
			return -EINVAL;
	}
	return 0;
}

int prov_pool_set_tmpl(struct prov_pool *pool, char which, const char *tmpl)
{
	char *dst;
	int err;

	switch (which) {
	case 'n':
		dst = pool->ns_tmpl;
		break;
	case 'h':
		dst = pool->host_tmpl;
		break;
	case 'p':
		dst = pool->peer_tmpl;
		break;
	default:
		return -EINVAL;
	}
	err = tmpl_check(tmpl);
	if (err)
		return err;
	if (strlen(tmpl) >= PROV_TMPL_MAX)
		return -ENAMETOOLONG;
	memcpy(dst, tmpl, strlen(tmpl) + 1);
	return 0;
}

/* "ADDR/N" of family af: 0, or -EINVAL when it is not that shape. */
static int parse_cidr(int af, const char *cidr, void *addr, unsigned *plen)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long n;

	if (strlen(cidr) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, cidr);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash++ = '\0';
	if (inet_pton(af, buf, addr) != 1)
		return -EINVAL;
	if (!isdigit((unsigned char)*slash))
		return -EINVAL;
	errno = 0;
	n = strtoul(slash, &end, 10);
	if (errno || *end || n > 128)
		return -EINVAL;
	*plen = (unsigned)n;
	return 0;
}

int prov_pool_set_v4(struct prov_pool *pool, const char *cidr)
{
	struct in_addr a;
	unsigned plen;
	uint32_t mask;

	if (parse_cidr(AF_INET, cidr, &a, &plen) < 0)
		return -EINVAL;
	if (plen < PROV_V4_PLEN_MIN || plen > PROV_V4_PLEN_MAX)
		return -ERANGE;
	mask = 0xffffffffu << (32 - plen);
	if (ntohl(a.s_addr) & ~mask)
		return -EADDRNOTAVAIL;
	pool->v4_base = a;
	pool->v4_plen = plen;
	return 0;
}

int prov_pool_set_v6(struct prov_pool *pool, const char *cidr)
{
	struct in6_addr a;
	unsigned plen, i;

	if (parse_cidr(AF_INET6, cidr, &a, &plen) < 0)
		return -EINVAL;
	if (plen != 48)
		return -ERANGE;
	for (i = 6; i < 16; i++)
		if (a.s6_addr[i])
			return -EADDRNOTAVAIL;
	pool->v6_base = a;
	return 0;
}

const char *prov_pool_strerror(int err, char which)
{
	switch (which) {
	case '4':
	case 4:
		switch (err) {
		case -ERANGE:
			return "the prefix length must be from 1 to 24";
		case -EADDRNOTAVAIL:
			return "host bits are set (A.B.C.D must be the "
			       "network address of the /N)";
		default:
			return "expected A.B.C.D/N with N from 1 to 24, host "
			       "bits 0, such as " PROV_DEFAULT_V4_POOL;
		}
	case '6':
	case 6:
		switch (err) {
		case -ERANGE:
			return "the prefix length must be 48";
		case -EADDRNOTAVAIL:
			return "host bits are set (only the first 48 bits may "
			       "be non-zero)";
		default:
			return "expected an IPv6 /48 with host bits 0, such as "
			       PROV_DEFAULT_V6_POOL;
		}
	case 'n':
	case 'h':
	case 'p':
		if (err == -ENAMETOOLONG)
			return "too long (at most 63 bytes)";
		return "use text with %u (user), %U (uid), %i (index) or %%";
	default:
		return "unknown pool setting";
	}
}

uint32_t prov_pool_capacity(const struct prov_pool *pool)
{
	uint32_t plen = pool->v4_plen;

	if (plen < PROV_V4_PLEN_MIN || plen > PROV_V4_PLEN_MAX)
		return 0;
	if (PROV_V4_PLEN_MAX - plen >= 16)
		return PROV_INDEX_MAX;
	return 1u << (PROV_V4_PLEN_MAX - plen);
}

/* Expand tmpl into out (at most outsz - 1 bytes; longer is an error). */
static int tmpl_expand(const char *tmpl, const char *user, uint32_t index,
		       uint32_t uid, char *out, size_t outsz)
{
	char num[16];
	const char *s;
	size_t n = 0, len;

	for (; *tmpl; tmpl++) {
		s = tmpl;
		len = 1;
		if (*tmpl == '%') {
			switch (*++tmpl) {
			case 'u':
				s = user;
				break;
			case 'i':
				snprintf(num, sizeof(num), "%u", index);
				s = num;
				break;
			case 'U':
				snprintf(num, sizeof(num), "%u", uid);
				s = num;
				break;
			case '%':
				s = "%";
				break;
			default:
				return -EINVAL;
			}
			len = strlen(s);
		}
		if (n + len >= outsz)
			return -ENAMETOOLONG;
		memcpy(out + n, s, len);
		n += len;
	}
	out[n] = '\0';
	return 0;
}

/* The kernel's dev_valid_name(), plus '%' (a name pattern to the kernel). */
static bool ifname_ok(const char *name)
{
	const char *p;

	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p == '%' ||
		    isspace((unsigned char)*p))
			return false;
	return true;
}

static bool nsname_ok(const char *name)
{
	return *name && strcmp(name, ".") && strcmp(name, "..") &&
	       !strchr(name, '/');
}

static int derive_err(char *errbuf, size_t errlen, int err, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

static int derive_err(char *errbuf, size_t errlen, int err, const char *fmt,
		      ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return err;
}

static int derive_name(const char *what, const char *tmpl, const char *user,
		       uint32_t index, uint32_t uid, char *out, size_t outsz,
		       bool ifname, char *errbuf, size_t errlen)
{
	int err = tmpl_expand(tmpl, user, index, uid, out, outsz);

	if (err == -ENAMETOOLONG)
		return derive_err(errbuf, errlen, err,
				  "%s name from \"%s\" is longer than %zu "
				  "bytes",
				  what, tmpl, outsz - 1);
	if (err)
		return derive_err(errbuf, errlen, err,
				  "bad %s template \"%s\"", what, tmpl);
	if (ifname ? !ifname_ok(out) : !nsname_ok(out))
		return derive_err(errbuf, errlen, -EINVAL,
				  "invalid %s name \"%s\"", what, out);
	return 0;
}

int prov_spec_derive(const struct prov_pool *pool, const char *user,
		     uint32_t uid, long index, struct prov_spec *spec,
		     char *errbuf, size_t errlen)
{
	uint32_t cap = prov_pool_capacity(pool), base, i;
	int err;

	memset(spec, 0, sizeof(*spec));
	if (!user || !*user)
		return derive_err(errbuf, errlen, -EINVAL, "empty user name");
	if (index < 0) {
		if (uid < pool->uid_base)
			return derive_err(errbuf, errlen, -ERANGE,
					  "uid %u is below the uid base %u",
					  uid, pool->uid_base);
		index = (long)(uid - pool->uid_base);
	}
	if (index >= (long)cap)
		return derive_err(errbuf, errlen, -ERANGE,
				  "index %ld is outside the pool (0..%u)",
				  index, cap ? cap - 1 : 0);
	i = (uint32_t)index;

	err = derive_name("namespace", pool->ns_tmpl, user, i, uid, spec->ns,
			  sizeof(spec->ns), false, errbuf, errlen);
	if (!err)
		err = derive_name("host interface", pool->host_tmpl, user, i,
				  uid, spec->host_if, sizeof(spec->host_if),
				  true, errbuf, errlen);
	if (!err)
		err = derive_name("namespace interface", pool->peer_tmpl, user,
				  i, uid, spec->ns_if, sizeof(spec->ns_if),
				  true, errbuf, errlen);
	if (err)
		return err;

	base = ntohl(pool->v4_base.s_addr) + (i << 8);
	spec->v4_host.s_addr = htonl(base + 1);
	spec->v4_ns.s_addr = htonl(base + 2);
	spec->v4_plen = 30;
	spec->v6_host = pool->v6_base;
	spec->v6_host.s6_addr[6] = (uint8_t)(i >> 8);
	spec->v6_host.s6_addr[7] = (uint8_t)i;
	spec->v6_ns = spec->v6_host;
	spec->v6_host.s6_addr[15] = 1;
	spec->v6_ns.s6_addr[15] = 2;
	spec->v6_plen = 64;
	spec->uid = uid;
	return 0;
}

bool prov_spec_equal(const struct prov_spec *a, const struct prov_spec *b)
{
	return !strcmp(a->ns, b->ns) && !strcmp(a->host_if, b->host_if) &&
	       !strcmp(a->ns_if, b->ns_if) &&
	       a->v4_host.s_addr == b->v4_host.s_addr &&
	       a->v4_ns.s_addr == b->v4_ns.s_addr &&
	       a->v4_plen == b->v4_plen && a->v6_plen == b->v6_plen &&
	       !memcmp(&a->v6_host, &b->v6_host, sizeof(a->v6_host)) &&
	       !memcmp(&a->v6_ns, &b->v6_ns, sizeof(a->v6_ns));
}

bool prov_spec_valid(const struct prov_spec *spec)
{
	return strnlen(spec->ns, sizeof(spec->ns)) < sizeof(spec->ns) &&
	       strnlen(spec->host_if, sizeof(spec->host_if)) <
		       sizeof(spec->host_if) &&
	       strnlen(spec->ns_if, sizeof(spec->ns_if)) <
		       sizeof(spec->ns_if) &&
	       nsname_ok(spec->ns) && ifname_ok(spec->host_if) &&
	       ifname_ok(spec->ns_if);
}
