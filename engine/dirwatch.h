/* SPDX-License-Identifier: MIT */
/* dirwatch: notice changes in the namespace directory, coalesced. */
#ifndef NSRELAY_DIRWATCH_H
#define NSRELAY_DIRWATCH_H

struct dirwatch;
struct event_base;

/* Watch DIR; CHANGED(ARG) runs after changes, at most once per
 * DIRWATCH_MIN_MS (a burst of namespaces appearing is one rescan), and
 * once more whenever the watch had to be re-established.  A directory that
 * is missing, or removed later, is waited for with a timer.  NULL on
 * ENOMEM. */
struct dirwatch *dirwatch_new(struct event_base *base, const char *dir,
			      void (*changed)(void *arg), void *arg);
void dirwatch_free(struct dirwatch *w);	/* NULL is fine */

/* Is the directory watched now (not waiting for it)? */
int dirwatch_active(const struct dirwatch *w);

#define DIRWATCH_MIN_MS		50
#endif
