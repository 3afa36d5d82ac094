/* SPDX-License-Identifier: MIT */
/* relay_int: what relay.c (the state machine of one connection) and
 * relay_set.c (starting connections, the set and its pipes) share.
 * Private to those two files. */
#ifndef NSRELAY_RELAY_INT_H
#define NSRELAY_RELAY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "engine/relay.h"

struct config_sockaddr;
struct upstream_srv;

enum { CLIENT, UPSTREAM };

/* Reads per event at most, so that one busy connection lets the others
 * run: 16 * 60 KiB (copy) or 16 pipes' worth (splice). */
#define READS_PER_EVENT		16
#define RELAY_SMALL		(16 * 1024)	/* a splice under it: back to copy */
/* Empty pipes kept for the next burst; the rest are closed. */
#define PIPES_KEPT		16
/* A pipe's capacity: the largest of these that fits the budget (below);
 * under the smallest, the connection copies. */
#define RELAY_PIPE_BIG		(1024 * 1024)	/* 2 splices a MiB each way */
#define RELAY_PIPE_MID		(256 * 1024)
#define RELAY_PIPE_MIN		(64 * 1024)	/* a new pipe's own size */

struct relay_pipe {
	int fd[2];			/* read end, write end */
	size_t size;			/* capacity */
	struct relay_pipe *next;	/* in the free list */
};

struct side {
	int fd;				/* -1 once gone */
	short mask;			/* what the event has: EV_READ|EV_WRITE|
					 * EV_ET while the socket is open */
	bool eof;			/* nothing more comes from this side */
	bool shut;			/* SHUT_WR passed on to this side */
	bool paused;			/* not read: the other side is full */
	bool rready;			/* may have bytes: not yet read empty */
	bool wready;			/* may take bytes: no write fell short */
	bool rdhup;			/* its FIN has come (EV_CLOSED) */
	bool bulk;			/* its last copy read filled the chunk:
					 * read it by splice */
	struct evbuffer *out;		/* copy: bytes for it; NULL if none */
	struct relay_pipe *pipe;	/* splice: bytes for it; NULL if none */
	size_t piped;			/* bytes in pipe */
	struct event ev;
};

struct relay {
	TAILQ_ENTRY(relay) entry;
	struct relay_set *set;
	struct relay_origin *o;
	struct timeval last;		/* last byte read, either side */
	uint64_t id;
	uint64_t bytes[2];		/* bytes read from each side */
	bool connected;			/* upstream connect completed */
	bool tcp;			/* both sides TCP: splice may be used */
	bool retried;			/* on a second server already */
	struct upstream_srv *srv;	/* its server; NULL without a set */
	uint8_t *hdr;			/* the PROXY header, sent to every
					 * server first; NULL without */
	size_t hdr_len;
	bool bind;			/* the upstream socket's own address: */
	struct in_addr src4;		/* for an IPv4 server */
	struct in6_addr src6;		/* for an IPv6 one */
	struct side side[2];
};

TAILQ_HEAD(relay_list, relay);

struct relay_set {
	struct event_base *base;
	struct relay_list relays;
	uint64_t n;
	uint64_t next_id;		/* connection ids, for logs */
	relay_shortage_fn shortage;
	void *arg;
	uint8_t *scratch;		/* copy path: RELAY_READ_CHUNK */
	/* the pipe pool */
	unsigned max_pipes;		/* 0: copy only */
	unsigned pipes;			/* open, in use or free */
	unsigned n_free;
	struct relay_pipe *free_pipes;
	size_t pipe_bytes;		/* capacity of the open pipes */
	size_t pipe_budget;		/* at most, by pipe-user-pages-soft */
	struct relay_stats stats;
	struct upstream_set *ups;	/* NULL: the service's first server */
	/* common timeouts, by duration */
	struct {
		uint64_t ms;
		const struct timeval *tv;
	} common[8];
};

/* relay.c */
void relay_side_cb(evutil_socket_t fd, short what, void *arg);
void relay_side_sync(struct relay *r, int s);
/* The one way a connection ends (see relay.c); frees R. */
void relay_close(struct relay *r, enum relay_close why, bool reset);
void relay_reset_fd(int fd);
void relay_pipe_close(struct relay_set *set, struct relay_pipe *p);
void relay_ms_to_tv(uint64_t ms, struct timeval *tv);
const struct timeval *relay_timer_tv(struct relay *r, struct timeval *tv);
void relay_touch(struct relay *r);
/* The upstream of R failed (WHAT, ERR: for the log) before its first
 * byte: the failure is counted against its server, and R moves to the
 * next server in service if it has not moved yet and nothing the client
 * sent has reached the server.  1: R goes on with another server (stop
 * handling the event); 0: not moved, R untouched (the caller ends it as
 * before); -1: R was closed. */
int relay_failover(struct relay *r, const char *what, int err);
#endif
