/* SPDX-License-Identifier: MIT */
/* relay: one accepted connection relayed to its upstream (splice(2)
 * through a pipe between TCP sockets, else read/write), with backpressure,
 * half-close, reset propagation and timeouts.
 *
 * The relay knows nothing of listeners or namespaces: a connection comes
 * from a struct relay_origin, which the layer above owns and keeps alive
 * until the relay calls origin->closed() for that connection.  Running out
 * of descriptors is reported through the set's hooks. */
#ifndef NSRELAY_RELAY_H
#define NSRELAY_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

/* Bytes buffered towards one side before reading from the other pauses.
 * Memory per connection stays below 2 * (RELAY_HIGH_WATER + one read chunk
 * of RELAY_READ_CHUNK) in user space, plus the kernel's socket buffers. */
#define RELAY_HIGH_WATER	(256 * 1024)
/* One readv() at most: with libevent's chain header, a 64 KiB allocation */
#define RELAY_READ_CHUNK	(60 * 1024)
/* Pipes for splice(2) at most (two descriptors each), and never more than
 * 1/32 of RLIMIT_NOFILE: 9,000 connections (18,000 descriptors) and 512
 * pipes fit under 20,000.  NSRELAY_PIPES=N in the environment sets another
 * number; NSRELAY_COPY_ONLY=1 (or NSRELAY_PIPES=0) never splices. */
#define RELAY_MAX_PIPES		512

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
	RELAY_CLOSE_NO_UPSTREAM,	/* every server of the service down */
	RELAY_CLOSE_MAX
};

const char *relay_close_name(enum relay_close why);

/* Why a datagram was dropped (datagram services, engine/dgram.c).  Append
 * only, as above. */
enum relay_drop {
	RELAY_DROP_NO_RESOURCES,	/* no descriptor or memory for a flow */
	RELAY_DROP_LIMIT,		/* a new flow over a limit, none to
					 * make room for it */
	RELAY_DROP_NO_UPSTREAM,		/* every server of the service down */
	RELAY_DROP_UPSTREAM_SEND,	/* the send towards the server failed
					 * (its socket's buffer full) */
	RELAY_DROP_CLIENT_SEND,		/* the send back to the client failed */
	RELAY_DROP_MAX
};

const char *relay_drop_name(enum relay_drop why);

struct config_service;
struct event_base;
struct relay_set;
struct upstream_set;

/* Counters of connections, written by the relay; origins may share them
 * (every listener of one service in one namespace does). */
struct relay_counters {
	uint64_t accepted;		/* connections started */
	uint64_t active;		/* started and not yet closed */
	uint64_t bytes_in;		/* client -> upstream */
	uint64_t bytes_out;		/* upstream -> client */
	uint64_t closed[RELAY_CLOSE_MAX];
	/* datagram services: a flow is a connection above */
	uint64_t datagrams_in, datagrams_out;
	uint64_t drops[RELAY_DROP_MAX];
	uint64_t upstream_unlogged;	/* failures since the last log line */
	struct timeval upstream_logged;
};

/* Where connections come from (a listener).  Owned by the caller; must
 * stay valid until closed() has run for every connection it started. */
struct relay_origin {
	const char *ns_name;		/* for logs */
	const struct config_service *svc;	/* upstream, timeouts */
	struct relay_counters *cnt;		/* never NULL */
	/* A connection of this origin ended (its sockets are closed). */
	void (*closed)(struct relay_origin *o, enum relay_close why);
};

/* Called when a connection cannot be set up for want of descriptors or
 * memory (ERR is the errno): the caller pauses accepting. */
typedef void (*relay_shortage_fn)(void *arg, int err);

/* The live connections of one event loop.  NULL on allocation failure. */
struct relay_set *relay_set_new(struct event_base *base,
				relay_shortage_fn shortage, void *arg);

/* The servers of the services (upstream.h): connections go to the server
 * it picks, and tell it how the server behaved.  Without it (NULL, the
 * default) every connection goes to its service's first server. */
void relay_set_upstreams(struct relay_set *set, struct upstream_set *ups);

/* Relay the accepted socket FD (from PEER, for logs; may be NULL) of
 * origin O: the upstream connection starts now, so that a server that
 * speaks first is heard at once.  The server is the one the upstream set
 * picks; when its connect fails, or it closes or resets before its first
 * byte and no byte went either way, the connection is tried once more on
 * the next server in service.  When no server is in service the client is
 * reset at once and NO_UPSTREAM counted.  FD must be non-blocking (accept4 with
 * SOCK_NONBLOCK): the relay reads and writes it until EAGAIN, edge-
 * triggered, and a blocking socket would stall the loop.  Takes ownership
 * of FD in every case;
 * O->closed() runs once for every connection started (not when this fails
 * at once: then the client is reset and NO_RESOURCES, CONNECT_FAILED or
 * NO_UPSTREAM is counted).  Returns 0, or -errno when no connection was started. */
int relay_start(struct relay_set *set, struct relay_origin *o, int fd,
		const struct sockaddr *peer);

/* Who the upstream is told the client is (relay_start_id). */
struct relay_ident {
	const void *hdr;		/* the PROXY header (engine/proxyhdr.h),
					 * copied; NULL: none */
	size_t hdr_len;
	bool bind;			/* bind the upstream socket to src4 or
					 * src6 (by the server's family),
					 * port chosen at connect */
	struct in_addr src4;
	struct in6_addr src6;
};

/* relay_start, with what ID says: its header sent to the upstream before
 * any byte of the client, and again to the next server if the connection
 * moves; the upstream socket bound to its address.  A bind or a connect
 * that finds no port free for that address (EADDRNOTAVAIL, EADDRINUSE)
 * is not the server's fault: the client is reset, counted as
 * no-resources, and the server's health is untouched. */
int relay_start_id(struct relay_set *set, struct relay_origin *o, int fd,
		   const struct sockaddr *peer, const struct relay_ident *id);

/* Live connections. */
uint64_t relay_count(const struct relay_set *set);

/* A socket of TYPE (SOCK_STREAM, SOCK_DGRAM), non-blocking, to the server
 * UP, bound as ID says (NULL: the host's choice; a unix datagram socket
 * gets an abstract address to be answered at), connect started: 0 with
 * *FD, *CONNECTED true when it completed at once, or -errno. */
struct config_sockaddr;
int relay_upstream_open(const struct config_sockaddr *up, int type,
			const struct relay_ident *id, int *fd,
			bool *connected);

/* A server of O failed (WHAT, ERR an errno or 0; SERVER NULL: every
 * server is down): a warning, one every 10 s per origin's counters at
 * most, saying how many since the last. */
void relay_log_upstream(struct event_base *base, struct relay_origin *o,
			const struct config_sockaddr *server,
			const char *what, int err);

/* Pipes open (in use or kept for reuse): two descriptors each, on top of
 * the two per connection. */
unsigned relay_pipe_count(const struct relay_set *set);

/* How the bytes went, for the curious (tests, benchmarks). */
struct relay_stats {
	uint64_t spliced;		/* bytes moved by splice(2) */
	uint64_t copied;		/* bytes read into user space */
	uint64_t pipe_misses;		/* no pipe to be had: copied */
	unsigned pipes, pipes_free, max_pipes;
	size_t pipe_bytes, pipe_budget;	/* capacity of the open pipes, max */
};
void relay_get_stats(const struct relay_set *set, struct relay_stats *st);

/* The pipes' capacity at most, in bytes (default: three quarters of
 * fs.pipe-user-pages-soft); affects pipes made afterwards. */
void relay_set_pipe_budget(struct relay_set *set, size_t bytes);

/* The timeouts of the origins' services may have changed (a reload): arm
 * every live connection's timer again with its service's timeouts as they
 * are now, counted from the connection's last byte, as if they had always
 * been these (a connection idle for longer than its new idle_timeout is
 * closed at once). */
void relay_set_retime(struct relay_set *set);

/* Close every live connection (at shutdown): a peer whose stream from the
 * other side is not complete (not ended, or bytes still buffered for it)
 * is reset; a peer whose stream was delivered whole gets a FIN. */
void relay_close_all(struct relay_set *set);

/* Close what is left and free the set.  Accepts NULL. */
void relay_set_free(struct relay_set *set);
#endif
