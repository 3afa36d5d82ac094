/* SPDX-License-Identifier: MIT */
/* proxyhdr: the PROXY protocol header nsrelayd sends to an upstream
 * (pure, libc only: no allocation, no log).
 *
 * v1 is one text line, "PROXY TCP4 src dst sport dport\r\n" (or TCP6, or
 * "PROXY UNKNOWN\r\n" when there is no address to give: health checks).
 * v2 is the binary form: 12-byte signature, version/command, family,
 * a 16-bit length, the addresses, then TLVs (type, 16-bit length, value).
 * nsrelayd's TLVs:
 *   0x30 PP2_TYPE_NETNS  the namespace's name (every connection)
 *   0xE0 (custom)        the user a provisioned namespace belongs to
 *   0xE1 (custom)        that user's uid, in decimal ASCII ("1009")
 * (0xE2-0xEF are kept for nsrelay's later use.)
 * A v2 header without addresses is the LOCAL command (health checks).
 */
#ifndef NSRELAY_PROXYHDR_H
#define NSRELAY_PROXYHDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXYHDR_TLV_NETNS	0x30
#define PROXYHDR_TLV_USER	0xE0	/* nsrelay's: provisioned user */
#define PROXYHDR_TLV_UID	0xE1	/* nsrelay's: that user's uid */
/* the longest header: v2, IPv6, a NAME_MAX namespace, a 255-byte user and
 * a 10-digit uid */
#define PROXYHDR_MAX		(16 + 36 + 3 + 255 + 3 + 255 + 3 + 10)

enum proxyhdr_version { PROXYHDR_OFF, PROXYHDR_V1, PROXYHDR_V2 };

/* Write the header of VERSION into BUF (CAP bytes) for a connection from
 * SRC to DST (both AF_INET or both AF_INET6, ports included), with, for
 * v2, the TLVs NETNS and USER where not NULL, and UID with USER when UID
 * is not negative (v1 carries no TLV).  SRC or
 * DST NULL: v1 "PROXY UNKNOWN", v2 LOCAL without TLVs.  Returns the
 * header's length, or -EINVAL (OFF, families that differ or are not
 * inet, a TLV over 255 bytes) or -ENOSPC (CAP too small). */
int proxyhdr_build(uint8_t *buf, size_t cap, enum proxyhdr_version version,
		   const struct sockaddr *src, const struct sockaddr *dst,
		   const char *netns, const char *user, int64_t uid);

#endif
