/* SPDX-License-Identifier: MIT */
/* proxyhdr: PROXY protocol v1 and v2 headers (see proxyhdr.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "engine/proxyhdr.h"

static const uint8_t v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static int v1(uint8_t *buf, size_t cap, const struct sockaddr *src,
	      const struct sockaddr *dst)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	unsigned sp, dp;
	int n;

	if (!src || !dst) {
		n = snprintf((char *)buf, cap, "PROXY UNKNOWN\r\n");
	} else if (src->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)src;
		const struct sockaddr_in *b = (const void *)dst;

		inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
		inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
		sp = ntohs(a->sin_port);
		dp = ntohs(b->sin_port);
		n = snprintf((char *)buf, cap, "PROXY TCP4 %s %s %u %u\r\n",
			     s, d, sp, dp);
	} else {
		const struct sockaddr_in6 *a = (const void *)src;
		const struct sockaddr_in6 *b = (const void *)dst;

		inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
		inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
		sp = ntohs(a->sin6_port);
		dp = ntohs(b->sin6_port);
		n = snprintf((char *)buf, cap, "PROXY TCP6 %s %s %u %u\r\n",
			     s, d, sp, dp);
	}
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

static size_t tlv(uint8_t *p, uint8_t type, const char *v)
{
	size_t len = strlen(v);

	p[0] = type;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	memcpy(p + 3, v, len);
	return 3 + len;
}

static int v2(uint8_t *buf, size_t cap, const struct sockaddr *src,
	      const struct sockaddr *dst, const char *netns, const char *user,
	      int64_t uid)
{
	uint8_t tmp[PROXYHDR_MAX], *p = tmp + 16;
	size_t len;

	memcpy(tmp, v2_sig, sizeof(v2_sig));
	if (!src || !dst) {
		tmp[12] = 0x20;		/* version 2, LOCAL */
		tmp[13] = 0x00;		/* UNSPEC */
	} else if (src->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)src;
		const struct sockaddr_in *b = (const void *)dst;

		tmp[12] = 0x21;		/* version 2, PROXY */
		tmp[13] = 0x11;		/* TCP over IPv4 */
		memcpy(p, &a->sin_addr, 4);
		memcpy(p + 4, &b->sin_addr, 4);
		memcpy(p + 8, &a->sin_port, 2);
		memcpy(p + 10, &b->sin_port, 2);
		p += 12;
	} else {
		const struct sockaddr_in6 *a = (const void *)src;
		const struct sockaddr_in6 *b = (const void *)dst;

		tmp[12] = 0x21;
		tmp[13] = 0x21;		/* TCP over IPv6 */
		memcpy(p, &a->sin6_addr, 16);
		memcpy(p + 16, &b->sin6_addr, 16);
		memcpy(p + 32, &a->sin6_port, 2);
		memcpy(p + 34, &b->sin6_port, 2);
		p += 36;
	}
	if (src && dst) {
		if (netns)
			p += tlv(p, PROXYHDR_TLV_NETNS, netns);
		if (user)
			p += tlv(p, PROXYHDR_TLV_USER, user);
		if (user && uid >= 0) {
			char num[24];

			snprintf(num, sizeof(num), "%lld", (long long)uid);
			p += tlv(p, PROXYHDR_TLV_UID, num);
		}
	}
	len = (size_t)(p - tmp);
	tmp[14] = (uint8_t)((len - 16) >> 8);
	tmp[15] = (uint8_t)(len - 16);
	if (len > cap)
		return -ENOSPC;
	memcpy(buf, tmp, len);
	return (int)len;
}

int proxyhdr_build(uint8_t *buf, size_t cap, enum proxyhdr_version version,
		   const struct sockaddr *src, const struct sockaddr *dst,
		   const char *netns, const char *user, int64_t uid)
{
	if (version != PROXYHDR_V1 && version != PROXYHDR_V2)
		return -EINVAL;
	if (src && dst &&
	    (src->sa_family != dst->sa_family ||
	     (src->sa_family != AF_INET && src->sa_family != AF_INET6)))
		return -EINVAL;
	if ((netns && strlen(netns) > 255) || (user && strlen(user) > 255) ||
	    uid > UINT32_MAX)
		return -EINVAL;
	return version == PROXYHDR_V1 ? v1(buf, cap, src, dst) :
	       v2(buf, cap, src, dst, netns, user, uid);
}
