/* SPDX-License-Identifier: MIT */
/* metrics: an HTTP/1.x endpoint serving /metrics in the Prometheus text
 * format, for the fleet's Prometheus to scrape, within fixed bounds of
 * connections, descriptors, memory and time (metrics.c). */
#ifndef NSRELAY_METRICS_H
#define NSRELAY_METRICS_H

struct daemon;
struct metrics;

/* Serve metrics.listen of D's config, or nothing when the config has no
 * metrics: section.  At start-up *M is NULL; on a reload pass the current
 * one: it is kept when the address did not change, else replaced (the
 * new socket is bound before the old one closes, unless the old one holds
 * the port; a privileged port cannot be bound once privileges are
 * dropped).  0, or -errno (logged) with *M the old server, or NULL if it
 * had to go first. */
int metrics_open(struct daemon *d, struct metrics **m);

/* Stop serving: the connections are closed, answers in progress with a
 * reset.  NULL is fine; before the daemon's listener set goes. */
void metrics_close(struct metrics *m);
#endif
