/* SPDX-License-Identifier: MIT */
/* relay: one accepted connection relayed to its upstream by a bufferevent
 * pair, with backpressure, half-close, reset propagation and timeouts. */
#ifndef NSRELAY_RELAY_H
#define NSRELAY_RELAY_H

#include <sys/socket.h>

/* Bytes buffered towards one side before reading from the other pauses.
 * Memory per connection stays below 2 * (RELAY_HIGH_WATER + one read chunk
 * of RELAY_READ_CHUNK) in user space, plus the kernel's socket buffers. */
#define RELAY_HIGH_WATER	(256 * 1024)
/* One readv() at most: with libevent's chain header, a 64 KiB allocation */
#define RELAY_READ_CHUNK	(60 * 1024)

/* Why a connection ended.  Append only: the names are shown to admins and
 * scripts will depend on them. */
enum relay_close {
	RELAY_CLOSE_DONE,		/* both directions finished */
	RELAY_CLOSE_CLIENT_RESET,	/* client reset or error */
	RELAY_CLOSE_UPSTREAM_RESET,	/* upstream reset or error */
	RELAY_CLOSE_CONNECT_FAILED,	/* upstream refused, unreachable */
	RELAY_CLOSE_CONNECT_TIMEOUT,
	RELAY_CLOSE_IDLE_TIMEOUT,
	RELAY_CLOSE_FIN_TIMEOUT,	/* half-closed and silent too long */
	RELAY_CLOSE_NO_RESOURCES,	/* out of descriptors or memory */
	RELAY_CLOSE_SHUTDOWN,		/* daemon stopping */
	RELAY_CLOSE_MAX
};

const char *relay_close_name(enum relay_close why);

struct binding;
struct daemon;

/* Relay the accepted socket FD (from PEER) of binding B: start the upstream
 * connection now, so that a server that speaks first is heard at once.
 * Takes ownership of FD in every case. */
void relay_start(struct binding *b, int fd, const struct sockaddr *peer,
		 int peerlen);

/* Close every live connection (at shutdown). */
void relay_close_all(struct daemon *d);
#endif
