/* SPDX-License-Identifier: MIT */
/* linkstats: traffic counters of the host's links (the host ends of
 * provisioned veths), read with an asynchronous rtnetlink dump. */
#ifndef NSRELAY_LINKSTATS_H
#define NSRELAY_LINKSTATS_H

#include <stdint.h>

struct event_base;
struct linkstats;
struct linkstats_wait;

/* As the kernel counts them on the link (for a host veth end: rx is what
 * the namespace sent, tx what it received). */
struct linkstats_counters {
	uint64_t rx_bytes, tx_bytes;
	uint64_t rx_packets, tx_packets;
	uint64_t rx_dropped, tx_dropped;
};

/* A cache of the counters of the links of the calling thread's namespace;
 * no socket yet (opened on the first refresh).  NULL on ENOMEM. */
struct linkstats *linkstats_new(struct event_base *base);

/* Cancel every wait (their callbacks do not run) and free.  NULL is
 * fine. */
void linkstats_free(struct linkstats *ls);

typedef void (*linkstats_done_fn)(void *arg, int err);

/* Make the cache at most MAX_AGE_MS old.  Returns 1 when it already is (no
 * callback); 0 when a dump runs (or one running is joined): DONE(ARG, err)
 * runs once it ends, on the loop, with 0 or -errno (the cache then holds
 * what was known before), and *W may cancel it until then; or -errno
 * (-ENOMEM, or the socket cannot be opened; no callback). */
int linkstats_refresh(struct linkstats *ls, unsigned max_age_ms,
		      linkstats_done_fn done, void *arg,
		      struct linkstats_wait **w);

/* Forget a wait: its callback will not run.  NULL is fine. */
void linkstats_cancel(struct linkstats_wait *w);

/* The counters of IFNAME as of the last dump: 0, or -ENOENT (no such link,
 * or no dump yet). */
int linkstats_get(const struct linkstats *ls, const char *ifname,
		  struct linkstats_counters *out);

/* Links in the cache, and the duration of the last dump in microseconds
 * (for the stats and the bench). */
unsigned linkstats_count(const struct linkstats *ls);
uint64_t linkstats_last_us(const struct linkstats *ls);
#endif
