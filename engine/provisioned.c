/* SPDX-License-Identifier: MIT */
/* provisioned: namespaces provisioned, the files that name them, and
 * keeping them whole.
 *
 * Remembering: the users provisioned are written to a state file (under
 * /run, next to the control socket: it is gone after a reboot, like the
 * namespaces).  At start the daemon provisions them again; the provisioner
 * adopts what is there, so a restart changes nothing in the kernel but
 * brings back the hosts file entries and the link monitor's care.  A file
 * rather than a guess from the kernel: the kernel cannot tell a namespace
 * we made on request from one an admin made that happens to match the
 * templates.
 *
 * The hosts and state files are rewritten at once after a change that
 * comes alone, and at most once per WRITE_DELAY_MS during a burst, so that
 * provisioning N namespaces does not write N files of N lines.  A write
 * syncs both files (fsync: tens to hundreds of ms on a busy disk), so it
 * runs on a worker thread (netns/offload.h) on a snapshot taken in the
 * loop: the state file first, then the hosts file.  One write at a time;
 * changes made meanwhile mark the set dirty and are written after it.  At
 * shutdown, provisioned_flush() waits for the write in flight and writes
 * what is still pending on the calling thread.
 *
 * Keeping them whole: a link monitor (rtnetlink multicast) reports host
 * links deleted.  If one was the host end of a provisioned veth and the
 * namespace is still there, the namespace is provisioned again (the
 * provisioner reconciles: it adds what is missing and touches nothing
 * else); if the namespace went too (`ip netns del`), it is no longer
 * provisioned and nothing is re-created behind the admin's back.  When the
 * monitor overruns, the events lost are unknown: every provisioned
 * namespace is reconciled.  A namespace is reconciled at most once a
 * second, one whose reconciliation failed waits for the next explicit
 * provision, and one a control request is working on (held) is left alone,
 * so that a deprovision is never undone by a repair.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/mman.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "engine/privc.h"
#include "priv/hostsfile.h"
#include "engine/log.h"
#include "engine/provisioned.h"
#include "netns/monitor.h"
#include "netns/netns.h"
#include "netns/offload.h"
#include "netns/provision.h"

#define WRITE_DELAY_MS	50

struct entry {
	TAILQ_ENTRY(entry) link;	/* in the order provisioned */
	struct entry *hnext;		/* in set->tab, by user */
	struct entry *nsnext;		/* in set->ns_tab, by spec.ns */
	uint64_t seq;			/* order provisioned, for the index */
	char *user;
	struct prov_spec spec;
	struct timeval reconciled;	/* last automatic reconciliation */
	bool broken;			/* it failed: wait for a provision */
	bool busy;			/* a reconciliation is running */
	unsigned held;			/* control requests running */
};

struct provisioned_set {
	TAILQ_HEAD(, entry) entries;
	struct privc *priv;		/* writes the files */
	size_t n;
	struct entry **tab;		/* by user: tab_size, a power of 2 */
	struct entry **ns_tab;		/* by namespace: tab_size too */
	size_t tab_size;
	uint64_t seq;			/* the last entry's */
	struct event_base *base;
	const struct config *cfg;
	struct prov *prov;
	char *state;
	provisioned_changed_fn changed;
	void *arg;
	struct event *write_ev;
	bool dirty;
	struct timeval written;		/* last write */
	struct offload *writer;		/* file writes off the loop */
	bool writing;			/* a write is on the worker */
	bool flushing;			/* shutdown: write here only */
	int monitor_fd;
	struct event *monitor_ev;
	struct reconcile *inflight;	/* reconciliations, for free */
};

/* A reconciliation in flight; its entry may go meanwhile. */
struct reconcile {
	struct reconcile *next;
	struct provisioned_set *set;
	char *user;
	bool orphaned;			/* the set is gone */
};

/* FNV-1a, for user and namespace names alike */
static size_t user_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static struct entry **slot(const struct provisioned_set *set,
			   const char *user)
{
	return &set->tab[user_hash(user) & (set->tab_size - 1)];
}

static struct entry **ns_slot(const struct provisioned_set *set,
			      const char *ns)
{
	return &set->ns_tab[user_hash(ns) & (set->tab_size - 1)];
}

/* Every request looks its user up (twice): a hash, not a walk of the
 * thousands of users provisioned. */
static struct entry *find(const struct provisioned_set *set, const char *user)
{
	struct entry *e;

	for (e = *slot(set, user); e; e = e->hnext)
		if (strcmp(e->user, user) == 0)
			return e;
	return NULL;
}

/* The stats look a namespace up for each namespace of a page, in several
 * metric families: a hash too, or a page would cost O(N^2).  Two users
 * with one namespace (templates allow it): the first provisioned, as a
 * walk of the list in order would find. */
static struct entry *find_ns(const struct provisioned_set *set,
			     const char *ns)
{
	struct entry *e, *first = NULL;

	for (e = *ns_slot(set, ns); e; e = e->nsnext)
		if (strcmp(e->spec.ns, ns) == 0 &&
		    (!first || e->seq < first->seq))
			first = e;
	return first;
}

/* Twice the buckets of both indexes, once there are as many entries as
 * buckets (kept as they are when memory is short: only slower). */
static void tab_grow(struct provisioned_set *set)
{
	struct entry **old = set->tab, **old_ns = set->ns_tab, *e, *next;
	struct entry **tab = calloc(set->tab_size * 2, sizeof(*tab));
	struct entry **ns_tab = calloc(set->tab_size * 2, sizeof(*ns_tab));
	size_t n = set->tab_size, i;

	if (!tab || !ns_tab) {
		free(tab);
		free(ns_tab);
		return;
	}
	set->tab = tab;
	set->ns_tab = ns_tab;
	set->tab_size = n * 2;
	for (i = 0; i < n; i++) {
		for (e = old[i]; e; e = next) {
			next = e->hnext;
			e->hnext = *slot(set, e->user);
			*slot(set, e->user) = e;
		}
		for (e = old_ns[i]; e; e = next) {
			next = e->nsnext;
			e->nsnext = *ns_slot(set, e->spec.ns);
			*ns_slot(set, e->spec.ns) = e;
		}
	}
	free(old);
	free(old_ns);
}

static void tab_remove(struct provisioned_set *set, struct entry *e)
{
	struct entry **pp = slot(set, e->user);

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
}

/* E's namespace in the index by namespace, or out of it (before its spec
 * changes). */
static void ns_index(struct provisioned_set *set, struct entry *e)
{
	e->nsnext = *ns_slot(set, e->spec.ns);
	*ns_slot(set, e->spec.ns) = e;
}

static void ns_unindex(struct provisioned_set *set, struct entry *e)
{
	struct entry **pp = ns_slot(set, e->spec.ns);

	while (*pp != e)
		pp = &(*pp)->nsnext;
	*pp = e->nsnext;
}

/* What one write needs, copied in the loop: the worker touches nothing
 * else (the config may be replaced by a reload meanwhile). */
struct write_job {
	struct provisioned_set *set;
	struct privc *priv;		/* writes the files (root's) */
	char why[PRIV_WHY_MAX];
	char *hosts_file, *domain, *state;
	struct hostsfile_entry *h;
	const char **lines;
	size_t n;
	int r_hosts, r_state;		/* results, -errno */
};

static void write_job_free(struct write_job *w)
{
	size_t i;

	if (!w)
		return;
	if (w->lines)
		for (i = 1; i <= w->n; i++)
			free((char *)w->lines[i]);
	free(w->lines);
	free(w->h);
	free(w->hosts_file);
	free(w->domain);
	free(w->state);
	free(w);
}

/* The snapshot of SET to write, or NULL (out of memory). */
static struct write_job *write_job_new(struct provisioned_set *set)
{
	const struct config_provision *cp = &set->cfg->provision;
	struct write_job *w = calloc(1, sizeof(*w));
	struct entry *e;
	size_t i = 0;

	if (!w)
		return NULL;
	w->set = set;
	w->priv = set->priv;
	w->h = calloc(set->n + 1, sizeof(*w->h));
	w->lines = calloc(set->n + 2, sizeof(*w->lines));
	if (!w->h || !w->lines ||
	    (cp->hosts_file && !(w->hosts_file = strdup(cp->hosts_file))) ||
	    (cp->domain && !(w->domain = strdup(cp->domain))) ||
	    (set->state && !(w->state = strdup(set->state))))
		goto fail;
	w->lines[0] = "# nsrelayd: users provisioned on request";
	TAILQ_FOREACH(e, &set->entries, link) {
		char *user = strdup(e->user);

		if (!user)
			goto fail;
		w->lines[++i] = user;
		w->n = i;
		w->h[i - 1].name = user;
		w->h[i - 1].v4 = e->spec.v4_ns;
		w->h[i - 1].v6 = e->spec.v6_ns;
	}
	return w;
fail:
	write_job_free(w);
	return NULL;
}

/* The records of W for file WHICH in a memfd, written by the privileged
 * helper (the files are root's, in root's directories; it checks each
 * record).  0 or -errno. */
static int write_records(struct write_job *w, enum priv_file which)
{
	size_t sz = which == PRIV_FILE_HOSTS ? sizeof(struct priv_host_rec) :
		    sizeof(struct priv_state_rec);
	char *buf = calloc(w->n ? w->n : 1, sz);
	int fd, r = 0;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < w->n; i++) {
		struct priv_host_rec *h = (void *)(buf + i * sz);

		/* the user name leads both kinds of records */
		snprintf(h->user, sizeof(h->user), "%s", w->lines[i + 1]);
		if (which == PRIV_FILE_HOSTS) {
			memcpy(h->v4, &w->h[i].v4, 4);
			memcpy(h->v6, &w->h[i].v6, 16);
		}
	}
	fd = memfd_create("nsrelay-records", MFD_CLOEXEC);
	if (fd < 0 || (w->n && write(fd, buf, w->n * sz) != (ssize_t)(w->n * sz)))
		r = -errno;
	free(buf);
	if (!r)
		r = privc_file_write(w->priv, which, fd, w->why, sizeof(w->why));
	if (fd >= 0)
		close(fd);
	return r;
}

/* On the worker (or the caller's thread at shutdown): only W. */
static void write_work(void *arg)
{
	struct write_job *w = arg;

	w->r_state = w->state ? write_records(w, PRIV_FILE_STATE) : 0;
	w->r_hosts = w->hosts_file ? write_records(w, PRIV_FILE_HOSTS) : 0;
}

static void write_report(const struct write_job *w)
{
	if (w->r_hosts < 0)
		log_warnx("writing %s: %s", w->hosts_file,
			  w->why[0] ? w->why : strerror(-w->r_hosts));
	if (w->r_state < 0)
		log_warnx("writing %s: %s", w->state,
			  w->why[0] ? w->why : strerror(-w->r_state));
}

static void mark_dirty(struct provisioned_set *set);

/* Back in the loop: report, and write again if the set changed since. */
static void write_done(void *arg)
{
	struct write_job *w = arg;
	struct provisioned_set *set = w->set;

	write_report(w);
	write_job_free(w);
	set->writing = false;
	event_base_gettimeofday_cached(set->base, &set->written);
	if (set->dirty && !set->flushing) {
		set->dirty = false;
		mark_dirty(set);	/* a burst: after WRITE_DELAY_MS */
	}
}

/* Write the files: on the worker, or here when SYNC (shutdown). */
static void write_files(struct provisioned_set *set, bool sync)
{
	struct write_job *w;

	if (set->writing)
		return;		/* dirty: written when it is back */
	set->dirty = false;
	event_base_gettimeofday_cached(set->base, &set->written);
	w = write_job_new(set);
	if (!w) {
		log_warnx("writing the provisioned namespaces: out of memory");
		return;
	}
	if (!sync && !set->flushing && (set->writer || (set->writer = offload_new(set->base))) &&
	    offload_run(set->writer, write_work, write_done, w) == 0) {
		set->writing = true;
		return;
	}
	write_work(w);		/* no worker: here */
	write_report(w);
	write_job_free(w);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	write_files(arg, false);
}

static void mark_dirty(struct provisioned_set *set)
{
	static const struct timeval delay = { 0, WRITE_DELAY_MS * 1000 };
	struct timeval now, since;

	if (set->dirty)
		return;
	set->dirty = true;
	if (set->writing)
		return;		/* write_done() comes back to it */
	event_base_gettimeofday_cached(set->base, &now);
	timersub(&now, &set->written, &since);
	if (timercmp(&since, &delay, <))
		evtimer_add(set->write_ev, &delay);	/* a burst */
	else
		write_files(set, false);
}

void provisioned_flush(struct provisioned_set *set)
{
	if (!set)
		return;
	set->flushing = true;
	if (set->writer) {
		/* the write in flight ends (its done runs here) */
		offload_free(set->writer);
		set->writer = NULL;
	}
	if (set->dirty) {
		evtimer_del(set->write_ev);
		write_files(set, true);
	}
	set->flushing = false;
}

void provisioned_set_user(struct provisioned_set *set, const char *user,
			  const struct prov_spec *spec, bool present)
{
	struct entry *e = find(set, user);
	char ns[sizeof(spec->ns)];
	bool index = false;

	/* SPEC may be the entry's own (a repair that found the namespace
	 * gone), freed below: its name first */
	snprintf(ns, sizeof(ns), "%s", spec->ns);
	if (present && !e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->user = strdup(user)))
			fatal("provisioned_set_user");
		if (set->n >= set->tab_size)
			tab_grow(set);
		e->hnext = *slot(set, user);
		*slot(set, user) = e;
		e->seq = ++set->seq;
		TAILQ_INSERT_TAIL(&set->entries, e, link);
		set->n++;
		index = true;
	} else if (!present && e) {
		tab_remove(set, e);
		ns_unindex(set, e);
		TAILQ_REMOVE(&set->entries, e, link);
		set->n--;
		free(e->user);
		free(e);
		e = NULL;
	} else if (!present) {
		return;
	} else if (strcmp(e->spec.ns, spec->ns) != 0) {
		ns_unindex(set, e);	/* under its old name */
		index = true;
	}
	if (e) {
		e->spec = *spec;
		e->broken = false;
		if (index)
			ns_index(set, e);
	}
	mark_dirty(set);
	if (set->changed)
		set->changed(set->arg, ns, present);
}

void provisioned_set_config(struct provisioned_set *set,
			    const struct config *cfg)
{
	set->cfg = cfg;
	mark_dirty(set);
}

const struct prov_spec *provisioned_find_ns(const struct provisioned_set *set,
					    const char *ns, const char **user)
{
	const struct entry *e = find_ns(set, ns);

	if (!e)
		return NULL;
	if (user)
		*user = e->user;
	return &e->spec;
}

bool provisioned_has(const struct provisioned_set *set, const char *user)
{
	return find(set, user) != NULL;
}

void provisioned_hold(struct provisioned_set *set, const char *user,
		      bool busy)
{
	struct entry *e = find(set, user);

	if (!e)
		return;
	if (busy)
		e->held++;
	else if (e->held)
		e->held--;
}

int provisioned_recall(struct provisioned_set *set,
		       void (*fn)(void *arg, const char *user), void *arg)
{
	char line[512];
	FILE *f;

	if (!set->state)
		return -ENOENT;
	f = fopen(set->state, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] && line[0] != '#')
			fn(arg, line);
	}
	fclose(f);
	return 0;
}

/* ---- keeping provisioned namespaces whole ---------------------------- */

static void reconciled(void *arg, int err, const char *msg)
{
	struct reconcile *q = arg, **p;
	struct provisioned_set *set = q->set;
	struct entry *e;

	if (q->orphaned)
		goto out;
	for (p = &set->inflight; *p; p = &(*p)->next)
		if (*p == q) {
			*p = q->next;
			break;
		}
	e = find(set, q->user);
	if (e) {
		e->busy = false;
		e->broken = err != 0;
		if (err)
			log_warnx("ns %s: provisioning %s again failed: %s; "
				  "waiting for the next provision request",
				  e->spec.ns, q->user,
				  msg ? msg : strerror(-err));
		else
			log_info("ns %s: provisioned %s again", e->spec.ns,
				 q->user);
		if (!err && set->changed)
			set->changed(set->arg, e->spec.ns, true);
	}
out:
	free(q->user);
	free(q);
}

static void reconcile(struct provisioned_set *set, struct entry *e,
		      const char *why)
{
	struct reconcile *q;
	struct netns_id id;
	struct timeval now;

	if (e->busy || e->broken || e->held)
		return;
	event_base_gettimeofday_cached(set->base, &now);
	if (e->reconciled.tv_sec && now.tv_sec - e->reconciled.tv_sec < 1)
		return;
	if (netns_stat(set->cfg->netns_dir, e->spec.ns, &id) < 0) {
		log_info("ns %s: gone with %s; %s is no longer provisioned",
			 e->spec.ns, why, e->user);
		provisioned_set_user(set, e->user, &e->spec, false);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q || !(q->user = strdup(e->user))) {
		free(q);
		log_warnx("ns %s: cannot reconcile: out of memory", e->spec.ns);
		return;
	}
	q->set = set;
	log_warnx("ns %s: %s; provisioning %s again", e->spec.ns, why,
		  e->user);
	e->reconciled = now;
	prov_forget(set->prov, e->spec.ns);
	if (prov_provision(set->prov, &e->spec, reconciled, q) < 0) {
		free(q->user);
		free(q);
		return;
	}
	q->next = set->inflight;
	set->inflight = q;
	e->busy = true;
}

static void link_gone(void *arg, const char *ifname)
{
	struct provisioned_set *set = arg;
	struct entry *e;
	char why[64];

	TAILQ_FOREACH(e, &set->entries, link)
		if (strcmp(e->spec.host_if, ifname) == 0) {
			snprintf(why, sizeof(why), "host link %s deleted",
				 ifname);
			reconcile(set, e, why);
			return;
		}
}

static void monitor_cb(evutil_socket_t fd, short what, void *arg)
{
	struct provisioned_set *set = arg;
	struct entry *e, *next;
	int r = monitor_read(fd, link_gone, set);

	if (r == -ENOBUFS) {
		log_warnx("link monitor overran: link events were lost; "
			  "reconciling every provisioned namespace");
		for (e = TAILQ_FIRST(&set->entries); e; e = next) {
			next = TAILQ_NEXT(e, link);
			e->reconciled.tv_sec = 0;
			reconcile(set, e, "link events lost");
		}
	} else if (r < 0) {
		log_warnx("link monitor: %s", strerror(-r));
	}
}

int provisioned_watch(struct provisioned_set *set)
{
	set->monitor_fd = monitor_open();
	if (set->monitor_fd < 0)
		return set->monitor_fd;
	set->monitor_ev = event_new(set->base, set->monitor_fd,
				    EV_READ | EV_PERSIST, monitor_cb, set);
	if (!set->monitor_ev || event_add(set->monitor_ev, NULL) < 0) {
		close(set->monitor_fd);
		return -ENOMEM;
	}
	return 0;
}

struct provisioned_set *provisioned_new(struct event_base *base,
					const struct config *cfg,
					struct prov *prov, struct privc *priv,
					const char *state,
					provisioned_changed_fn changed,
					void *arg)
{
	struct provisioned_set *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->priv = priv;
	TAILQ_INIT(&set->entries);
	set->base = base;
	set->cfg = cfg;
	set->prov = prov;
	set->changed = changed;
	set->arg = arg;
	set->monitor_fd = -1;
	set->write_ev = evtimer_new(base, write_cb, set);
	set->tab_size = 64;
	set->tab = calloc(set->tab_size, sizeof(*set->tab));
	set->ns_tab = calloc(set->tab_size, sizeof(*set->ns_tab));
	if (!set->write_ev || !set->tab || !set->ns_tab ||
	    (state && !(set->state = strdup(state)))) {
		provisioned_free(set);
		return NULL;
	}
	return set;
}

void provisioned_free(struct provisioned_set *set)
{
	struct entry *e;
	struct reconcile *q;

	if (!set)
		return;
	provisioned_flush(set);
	for (q = set->inflight; q; q = q->next)
		q->orphaned = true;	/* prov_free() completes them */
	if (set->monitor_ev) {
		event_free(set->monitor_ev);
		close(set->monitor_fd);
	}
	while ((e = TAILQ_FIRST(&set->entries))) {
		TAILQ_REMOVE(&set->entries, e, link);
		free(e->user);
		free(e);
	}
	if (set->write_ev)
		event_free(set->write_ev);
	free(set->tab);
	free(set->ns_tab);
	free(set->state);
	free(set);
}
