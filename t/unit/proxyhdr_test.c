/* SPDX-License-Identifier: MIT */
/* proxyhdr_test: PROXY v1 and v2 headers, byte for byte (engine/proxyhdr.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "engine/proxyhdr.h"
#include "t/unit/tap.h"

static struct sockaddr_in in4(const char *a, unsigned port)
{
	struct sockaddr_in s = { .sin_family = AF_INET,
				 .sin_port = htons(port) };

	inet_pton(AF_INET, a, &s.sin_addr);
	return s;
}

static struct sockaddr_in6 in6(const char *a, unsigned port)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6,
				  .sin6_port = htons(port) };

	inet_pton(AF_INET6, a, &s.sin6_addr);
	return s;
}

static void is_bytes(const uint8_t *got, int n, const uint8_t *want,
		     size_t wn, const char *name)
{
	ok(n == (int)wn && memcmp(got, want, wn) == 0, "%s (%d bytes, want %zu)",
	   name, n, wn);
}

#define SIG 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, \
	    0x54, 0x0A

int main(void)
{
	uint8_t b[PROXYHDR_MAX];
	struct sockaddr_in s4 = in4("100.64.9.2", 40000),
			   d4 = in4("127.0.0.1", 3306);
	struct sockaddr_in6 s6 = in6("fd75:6272:7370:9::2", 40001),
			    d6 = in6("::1", 25);
	const struct sockaddr *S4 = (const void *)&s4, *D4 = (const void *)&d4,
			      *S6 = (const void *)&s6, *D6 = (const void *)&d6;
	int n;

	n = proxyhdr_build(b, sizeof(b), PROXYHDR_V1, S4, D4, "alice", "alice",
			   1009);
	is_bytes(b, n, (const uint8_t *)"PROXY TCP4 100.64.9.2 127.0.0.1 "
		 "40000 3306\r\n", 44, "v1 IPv4 (TLVs ignored)");
	n = proxyhdr_build(b, sizeof(b), PROXYHDR_V1, S6, D6, NULL, NULL, -1);
	is_bytes(b, n, (const uint8_t *)"PROXY TCP6 fd75:6272:7370:9::2 ::1 "
		 "40001 25\r\n", 45, "v1 IPv6");
	n = proxyhdr_build(b, sizeof(b), PROXYHDR_V1, NULL, NULL, "x", NULL,
			   -1);
	is_bytes(b, n, (const uint8_t *)"PROXY UNKNOWN\r\n", 15,
		 "v1 UNKNOWN");
	{
		static const uint8_t want[] = {
			SIG, 0x21, 0x11, 0x00, 0x0C,
			100, 64, 9, 2, 127, 0, 0, 1, 0x9C, 0x40, 0x0C, 0xEA,
		};
		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S4, D4, NULL,
				   NULL, -1);
		is_bytes(b, n, want, sizeof(want), "v2 IPv4 without TLVs");
	}
	{
		static const uint8_t want[] = {
			SIG, 0x21, 0x11, 0x00, 0x0C + 8 + 8,
			100, 64, 9, 2, 127, 0, 0, 1, 0x9C, 0x40, 0x0C, 0xEA,
			0x30, 0x00, 0x05, 'a', 'l', 'i', 'c', 'e',
			0xE0, 0x00, 0x05, 'a', 'l', 'i', 'c', 'e',
		};
		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S4, D4, "alice",
				   "alice", -1);
		is_bytes(b, n, want, sizeof(want), "v2 IPv4, NETNS and user");
	}
	{
		static const uint8_t want[] = {
			SIG, 0x21, 0x11, 0x00, 0x0C + 8 + 8 + 7,
			100, 64, 9, 2, 127, 0, 0, 1, 0x9C, 0x40, 0x0C, 0xEA,
			0x30, 0x00, 0x05, 'a', 'l', 'i', 'c', 'e',
			0xE0, 0x00, 0x05, 'a', 'l', 'i', 'c', 'e',
			0xE1, 0x00, 0x04, '1', '0', '0', '9',
		};
		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S4, D4, "alice",
				   "alice", 1009);
		is_bytes(b, n, want, sizeof(want),
			 "v2 IPv4, NETNS, user and uid");
		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S4, D4, "alice",
				   NULL, 1009);
		ok(n == 16 + 12 + 8, "no uid without a user (%d)", n);
		is_int(proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S4, D4, NULL,
				      "alice", (int64_t)UINT32_MAX + 1),
		       -EINVAL, "a uid over 32 bits");
	}
	{
		static const uint8_t want[] = {
			SIG, 0x21, 0x21, 0x00, 0x24 + 6,
			0xfd, 0x75, 0x62, 0x72, 0x73, 0x70, 0, 9,
			0, 0, 0, 0, 0, 0, 0, 2,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
			0x9C, 0x41, 0x00, 0x19,
			0x30, 0x00, 0x03, 'n', 's', '1',
		};
		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S6, D6, "ns1",
				   NULL, -1);
		is_bytes(b, n, want, sizeof(want), "v2 IPv6, NETNS");
	}
	{
		static const uint8_t want[] = {
			SIG, 0x21, 0x21, 0x00, 0x24,
			0xfd, 0x75, 0x62, 0x72, 0x73, 0x70, 0, 9,
			0, 0, 0, 0, 0, 0, 0, 2,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
			0x9C, 0x41, 0x00, 0x19,
		};
		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S6, D6, NULL,
				   NULL, -1);
		is_bytes(b, n, want, sizeof(want), "v2 IPv6 without TLVs");
	}
	{
		static const uint8_t want[] = { SIG, 0x20, 0x00, 0x00, 0x00 };

		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, NULL, NULL,
				   "ns1", "u", 7);
		is_bytes(b, n, want, sizeof(want), "v2 LOCAL, no TLV");
	}
	/* sanity: refusals */
	is_int(proxyhdr_build(b, sizeof(b), PROXYHDR_OFF, S4, D4, NULL, NULL,
			      -1),
	       -EINVAL, "off builds nothing");
	is_int(proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S4, D6, NULL, NULL,
			      -1),
	       -EINVAL, "families that differ");
	is_int(proxyhdr_build(b, 20, PROXYHDR_V2, S4, D4, "alice", NULL, -1),
	       -ENOSPC, "v2 too long for the buffer");
	is_int(proxyhdr_build(b, 10, PROXYHDR_V1, S4, D4, NULL, NULL, -1),
	       -ENOSPC, "v1 too long for the buffer");
	{
		char big[300];

		memset(big, 'n', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		is_int(proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S4, D4, big,
				      NULL, -1),
		       -EINVAL, "a TLV over 255 bytes");
		big[255] = 0;
		n = proxyhdr_build(b, sizeof(b), PROXYHDR_V2, S6, D6, big, big,
				   UINT32_MAX);
		ok(n == PROXYHDR_MAX, "the longest header fits PROXYHDR_MAX "
		   "(%d)", n);
	}
	return done_testing();
}
