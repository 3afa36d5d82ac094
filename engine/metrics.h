/* SPDX-License-Identifier: MIT */
/* metrics: an HTTP endpoint (evhttp) serving /metrics in the Prometheus
 * text format, for the fleet's Prometheus to scrape. */
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

/* Stop serving (scrapes in progress are dropped).  NULL is fine. */
void metrics_close(struct metrics *m);
#endif
