/* SPDX-License-Identifier: MIT */
/* dirwatch: notice changes in the namespace directory, coalesced. */
#ifndef NSRELAY_DIRWATCH_H
#define NSRELAY_DIRWATCH_H

struct dirwatch;
struct event_base;

/* Watch DIR; CHANGED(ARG, NAMES, N) runs after changes, at most once per
 * DIRWATCH_MIN_MS (a burst of namespaces appearing is one call), with the
 * N names created, deleted or moved since the last call (each once), or
 * with NAMES NULL when everything must be looked at: at start, whenever
 * the watch had to be re-established, when events were lost, and when more
 * than DIRWATCH_MAX_NAMES names changed.  A directory that is missing, or
 * removed later, is waited for with a timer.  NULL on ENOMEM. */
typedef void (*dirwatch_cb)(void *arg, char *const *names, size_t n);
struct dirwatch *dirwatch_new(struct event_base *base, const char *dir,
			      dirwatch_cb changed, void *arg);
void dirwatch_free(struct dirwatch *w);	/* NULL is fine */

/* Is the directory watched now (not waiting for it)? */
int dirwatch_active(const struct dirwatch *w);

#define DIRWATCH_MIN_MS		50
#define DIRWATCH_MAX_NAMES	256
#endif
