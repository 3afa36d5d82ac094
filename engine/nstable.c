/* SPDX-License-Identifier: MIT */
/* nstable: which namespaces are served, and opening their listeners.
 *
 * Theory of operation
 *
 * A namespace is wanted when the config lists it, when it was found in the
 * namespace directory and the config serves every (matching) namespace, or
 * when it was provisioned.  Each wanted name has a struct ns, found by name
 * in one hash table and, once opened, by its nsfs identity in another, and
 * a listener group (listener.c) with one listener per (service, listen
 * address) that applies to it.
 *
 * ns_try() asks the privileged helper (privc_listen()) for all of its
 * listeners that are not up, in one request (the helper opens the
 * namespace file once for them), and learns the namespace's identity:
 *  - missing: its listeners stay closed; retried with a backoff from 25 ms
 *    to bind_retry_max (the directory watch usually comes first);
 *  - not a namespace: `ip netns add` creates the file before it mounts the
 *    namespace on it, so retried for NOT_NS_WINDOW_MS, then logged once at
 *    warning level and left until the directory changes or SIGHUP;
 *  - a symlink, the daemon's own namespace, or a second name of a namespace
 *    already served under another name: refused, logged once (a symlink to
 *    /proc/PID/ns/net would open listeners in the host);
 *  - a namespace: the sockets the helper made are handed to their
 *    listeners; those it could not make (a user squats the port) are
 *    retried with the backoff.
 * Each distinct failure is logged once.  A namespace re-created under the
 * same name (another identity) gets its listeners re-opened in the new one.
 *
 * nstable_sync() rescans everything (SIGHUP, start, lost directory
 * events); nstable_sync_names() looks at the names the directory watch
 * reported and nstable_provisioned() at one namespace only, so N
 * namespaces appearing or provisioned one by one cost O(N), not O(N^2).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/nstable.h"
#include "engine/privc.h"
#include "netns/netns.h"

#define RETRY_MIN_MS		25
#define NOT_NS_WINDOW_MS	5000

struct ns {
	TAILQ_ENTRY(ns) entry;
	struct ns *by_name;		/* hash chains */
	struct ns *by_id;
	struct nstable *t;
	char *name;
	struct netns_id id;
	bool have_id;			/* in the identity index */
	bool in_config, in_dir, provisioned;
	bool refused;			/* logged; not retried */
	struct listener_group *grp;
	struct event *retry;
	uint64_t backoff_ms;
	uint64_t not_ns_since;		/* ms, 0: not waiting for a mount */
	int err;			/* namespace-level failure logged */
	struct pre *pre;		/* its LISTEN asked ahead, or NULL */
};

/* A LISTEN asked ahead (try_many()): for NS's listeners LS, in order. */
struct pre {
	struct ns *ns;
	struct listener *ls[PRIV_LISTEN_MAX];
	const struct config_sockaddr *addrs[PRIV_LISTEN_MAX];
	bool dgram[PRIV_LISTEN_MAX];
	struct privc_listen q;		/* the request and its answer */
};

TAILQ_HEAD(ns_list, ns);

struct nstable {
	struct event_base *base;
	const struct config *cfg;
	struct listener_set *ls;
	struct privc *priv;		/* makes the listening sockets */
	struct ns_list all;
	struct ns **names, **ids;	/* hash buckets */
	size_t nbuckets, n;
	struct netns_id host;
	bool have_host;
	bool closed;			/* shutting down: open nothing */
	struct pre pre[2 * PRIVC_BATCH_MAX];	/* try_many()'s two batches */
};

static size_t hash_name(const char *s)
{
	size_t h = 5381;

	while (*s)
		h = h * 33 ^ (unsigned char)*s++;
	return h;
}

static size_t hash_id(const struct netns_id *id)
{
	return (size_t)id->ino * 2654435761u ^ (size_t)id->dev;
}

static struct ns *find(const struct nstable *t, const char *name)
{
	struct ns *ns;

	for (ns = t->names[hash_name(name) & (t->nbuckets - 1)]; ns;
	     ns = ns->by_name)
		if (strcmp(ns->name, name) == 0)
			return ns;
	return NULL;
}

static struct ns *find_id(const struct nstable *t, const struct netns_id *id)
{
	struct ns *ns;

	for (ns = t->ids[hash_id(id) & (t->nbuckets - 1)]; ns; ns = ns->by_id)
		if (netns_id_eq(&ns->id, id))
			return ns;
	return NULL;
}

static void id_unlink(struct nstable *t, struct ns *ns)
{
	struct ns **p;

	if (!ns->have_id)
		return;
	for (p = &t->ids[hash_id(&ns->id) & (t->nbuckets - 1)]; *p;
	     p = &(*p)->by_id)
		if (*p == ns) {
			*p = ns->by_id;
			break;
		}
	ns->have_id = false;
}

static void id_link(struct nstable *t, struct ns *ns,
		    const struct netns_id *id)
{
	struct ns **b = &t->ids[hash_id(id) & (t->nbuckets - 1)];

	ns->id = *id;
	ns->by_id = *b;
	*b = ns;
	ns->have_id = true;
}

/* Double the buckets when the table is full.  0 or -ENOMEM. */
static int grow(struct nstable *t)
{
	size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
	struct ns **names = calloc(nb, sizeof(*names));
	struct ns **ids = calloc(nb, sizeof(*ids));
	struct ns *ns;

	if (!names || !ids) {
		free(names);
		free(ids);
		return -ENOMEM;
	}
	free(t->names);
	free(t->ids);
	t->names = names;
	t->ids = ids;
	t->nbuckets = nb;
	TAILQ_FOREACH(ns, &t->all, entry) {
		struct ns **b = &names[hash_name(ns->name) & (nb - 1)];

		ns->by_name = *b;
		*b = ns;
		if (ns->have_id) {
			b = &ids[hash_id(&ns->id) & (nb - 1)];
			ns->by_id = *b;
			*b = ns;
		}
	}
	return 0;
}

static uint64_t now_ms(const struct nstable *t)
{
	struct timeval tv;

	event_base_gettimeofday_cached(t->base, &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void schedule(struct ns *ns)
{
	uint64_t max = ns->t->cfg->retry_max_ms;
	struct timeval tv;

	ns->backoff_ms = ns->backoff_ms ? ns->backoff_ms * 2 : RETRY_MIN_MS;
	if (ns->backoff_ms > max)
		ns->backoff_ms = max;
	tv.tv_sec = (time_t)(ns->backoff_ms / 1000);
	tv.tv_usec = (suseconds_t)(ns->backoff_ms % 1000) * 1000;
	evtimer_add(ns->retry, &tv);
}

static void close_all(struct ns *ns)
{
	struct listener *l;

	TAILQ_FOREACH(l, &ns->grp->members, entry)
		listener_close(l);
}

/* A namespace-level failure: logged once per distinct error. */
static void ns_failed(struct ns *ns, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ns_failed(struct ns *ns, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (err == ns->err)
		return;
	ns->err = err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("ns %s: %s", ns->name, msg);
}

/* Open the listeners of NS that are not up, from one request to the
 * helper per PRIV_LISTEN_MAX of them.  Returns 0, or the namespace's own
 * -errno (as netns_open(): missing, not a namespace, a link, ...; -EPERM:
 * the helper's own) with its identity in *id otherwise; *failed when a
 * listener could not be opened (it is retried). */
/* Let go of the answer asked ahead for NS, closing what it did not use. */
static void pre_drop(struct ns *ns)
{
	struct pre *p = ns->pre;

	if (!p)
		return;
	if (p->q.sent && p->q.ret == 0)
		for (size_t i = 0; i < p->q.n; i++)
			if (p->q.fds[i] >= 0)
				close(p->q.fds[i]);
	p->ns = NULL;
	ns->pre = NULL;
}

/* The answer asked ahead for NS, if it was for exactly the listeners
 * LS[N]: its results as privc_listen() gives them, *HAVE set. */
static int pre_take(struct ns *ns, struct listener *const *ls, size_t n,
		    int *fds, int *errs, enum priv_step *steps,
		    struct netns_id *id, char *why, size_t whylen, bool *have)
{
	struct pre *p = ns->pre;
	int r;

	*have = false;
	if (!p)
		return 0;
	if (!p->q.sent || p->q.n != n ||
	    memcmp(p->ls, ls, n * sizeof(*ls))) {
		pre_drop(ns);
		return 0;
	}
	*have = true;
	r = p->q.ret;
	snprintf(why, whylen, "%s", p->q.why);
	if (r == 0) {
		*id = p->q.id;
		memcpy(fds, p->q.fds, n * sizeof(*fds));
		memcpy(errs, p->q.errs, n * sizeof(*errs));
		memcpy(steps, p->q.steps, n * sizeof(*steps));
		for (size_t i = 0; i < n; i++)
			p->q.fds[i] = -1;	/* the caller's now */
	}
	pre_drop(ns);
	return r;
}

static int ns_listen(struct ns *ns, struct netns_id *id, bool *failed,
		     bool *opened)
{
	struct nstable *t = ns->t;
	const struct config_sockaddr *addrs[PRIV_LISTEN_MAX];
	bool dgram[PRIV_LISTEN_MAX];
	struct listener *ls[PRIV_LISTEN_MAX], *l;
	int fds[PRIV_LISTEN_MAX], errs[PRIV_LISTEN_MAX];
	enum priv_step steps[PRIV_LISTEN_MAX];
	char why[PRIV_WHY_MAX];
	size_t n = 0;
	bool have;
	int r;

	*opened = false;
	l = TAILQ_FIRST(&ns->grp->members);
	do {
		n = 0;
		for (; l && n < PRIV_LISTEN_MAX; l = TAILQ_NEXT(l, entry)) {
			if (l->state == LISTENER_LISTENING)
				continue;
			if (!listener_set_room(t->ls)) {
				int old = l->err;

				listener_failed(l, EMFILE,
						"file descriptor limit reached");
				*failed = true;
				if (old != EMFILE)
					log_warnx("ns %s: %s %s: file descriptor "
						  "limit reached; retrying",
						  ns->name, l->origin.svc->name,
						  l->addr->text);
				continue;
			}
			ls[n] = l;
			dgram[n] = l->origin.svc->protocol == CONFIG_PROTO_UDP;
			addrs[n++] = l->addr;
		}
		if (!n)
			/* nothing to open: the namespace itself */
			return *opened ? 0 :
			       netns_stat(t->cfg->netns_dir, ns->name, id);
		r = pre_take(ns, ls, n, fds, errs, steps, id, why, sizeof(why),
			     &have);
		if (!have)
			r = privc_listen(t->priv, ns->name, addrs, dgram, n,
					 fds, errs, steps, id, why,
					 sizeof(why));
		if (r < 0)
			return r;
		*opened = true;
		for (size_t i = 0; i < n; i++) {
			int old = ls[i]->err;

			if (fds[i] >= 0) {
				ls[i]->listen_pending = fds[i];
				continue;
			}
			listener_failed(ls[i], errs[i], priv_step_name(steps[i]));
			*failed = true;
			if (-errs[i] != old)
				log_warnx("ns %s: %s %s: %s: %s; retrying",
					  ns->name, ls[i]->origin.svc->name,
					  ls[i]->addr->text,
					  priv_step_name(steps[i]),
					  strerror(-errs[i]));
		}
	} while (l);
	return 0;
}

/* Drop the sockets ns_listen() got and did not hand to their listeners. */
static void ns_drop_pending(struct ns *ns)
{
	struct listener *l;

	TAILQ_FOREACH(l, &ns->grp->members, entry)
		if (l->listen_pending >= 0) {
			close(l->listen_pending);
			l->listen_pending = -1;
		}
}

static void ns_try(struct ns *ns)
{
	struct nstable *t = ns->t;
	const char *dir = t->cfg->netns_dir;
	struct netns_id id;
	struct listener *l;
	struct ns *other;
	bool failed = false, opened;
	int r, pass = 0;

	evtimer_del(ns->retry);
	if (ns->refused || t->closed)
		return;
again:
	/* nothing to open: ns_check() has seen the identity is unchanged */
	if (ns->have_id) {
		TAILQ_FOREACH(l, &ns->grp->members, entry)
			if (l->state != LISTENER_LISTENING)
				break;
		if (!l)
			return;
	}
	/* what the file is, first, without the helper: a second name of a
	 * namespace served, or the host's, never gets a listener made */
	r = netns_stat(dir, ns->name, &id);
	if (r == 0 && ((t->have_host && netns_id_eq(&id, &t->host)) ||
		       ((other = find_id(t, &id)) && other != ns)))
		goto checked;
	if (r == 0) {
		struct netns_id sid = id;

		r = ns_listen(ns, &id, &failed, &opened);
		if (r == 0 && !netns_id_eq(&id, &sid)) {
			/* it changed between the two: look again soon */
			ns_drop_pending(ns);
			r = -EAGAIN;
		}
	}
checked:
	if (r == -EAGAIN) {
		uint64_t now = now_ms(t);

		close_all(ns);
		if (!ns->not_ns_since)
			ns->not_ns_since = now;
		if (now - ns->not_ns_since < NOT_NS_WINDOW_MS) {
			schedule(ns);
			return;
		}
		ns_failed(ns, EAGAIN, "%s/%s is not a network namespace; "
			  "ignored until it changes", dir, ns->name);
		return;
	}
	ns->not_ns_since = 0;
	if (r == -ENOTTY) {
		close_all(ns);
		ns_failed(ns, ENOTTY, "%s/%s is not a network namespace and "
			  "cannot become one; ignored until it changes", dir,
			  ns->name);
		ns->refused = true;
		return;
	}
	if (r == -ELOOP) {
		close_all(ns);
		ns_failed(ns, ELOOP, "%s/%s is a symbolic link; refused", dir,
			  ns->name);
		ns->refused = true;
		return;
	}
	if (r == -EPERM || (r == 0 && t->have_host &&
			    netns_id_eq(&id, &t->host))) {
		ns_drop_pending(ns);
		close_all(ns);
		ns_failed(ns, EPERM, "%s/%s is the daemon's own network "
			  "namespace; refused", dir, ns->name);
		ns->refused = true;
		return;
	}
	if (r < 0) {
		close_all(ns);
		ns_failed(ns, -r, "namespace %s/%s: %s; retrying",
			  dir, ns->name, strerror(-r));
		schedule(ns);
		return;
	}
	other = find_id(t, &id);
	if (other && other != ns) {
		ns_drop_pending(ns);
		close_all(ns);
		ns_failed(ns, EEXIST, "the same namespace as %s; served once, "
			  "as %s", other->name, other->name);
		ns->refused = true;
		return;
	}
	if (!ns->have_id || !netns_id_eq(&ns->id, &id)) {
		/* first time, or a new namespace under the old name: every
		 * listener in the new one (once more, for those that were
		 * up in the old one) */
		bool up = false;

		TAILQ_FOREACH(l, &ns->grp->members, entry)
			up |= l->state == LISTENER_LISTENING;
		id_unlink(t, ns);
		id_link(t, ns, &id);
		if (up && pass++ < 1) {
			ns_drop_pending(ns);
			close_all(ns);
			failed = false;
			goto again;
		}
	}
	ns->err = 0;
	TAILQ_FOREACH(l, &ns->grp->members, entry) {
		if (l->listen_pending < 0)
			continue;
		listener_listen_fd(l, l->listen_pending);
		l->listen_pending = -1;
		log_info("ns %s: %s: listening on %s", ns->name,
			 l->origin.svc->name, l->addr->text);
	}
	if (failed)
		schedule(ns);
	else
		ns->backoff_ms = 0;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	ns_try(arg);
}

/* Something changed for NS: forget its refusal and backoff, try now. */
static void ns_try_now(struct ns *ns)
{
	ns->refused = false;
	ns->backoff_ms = 0;
	ns_try(ns);
}

static void limits_of(const struct config *cfg, struct listener_limits *lim)
{
	lim->conns = cfg->limits.conns;
	lim->rate = cfg->limits.rate;
	lim->burst = cfg->limits.burst;
}

static struct ns *ns_get(struct nstable *t, const char *name)
{
	const struct config *cfg = t->cfg;
	struct listener_limits lim;
	struct ns *ns = find(t, name), **b;

	if (ns)
		return ns;
	limits_of(cfg, &lim);
	if (t->n >= t->nbuckets && grow(t) < 0)
		fatalx("out of memory");
	ns = calloc(1, sizeof(*ns));
	if (!ns || !(ns->name = strdup(name)) ||
	    !(ns->retry = evtimer_new(t->base, retry_cb, ns)) ||
	    !(ns->grp = listener_group_new(t->ls, name, &lim)))
		fatalx("out of memory");
	ns->t = t;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *svc = &cfg->services[i];

		if (!config_service_in_ns(svc, name))
			continue;
		for (size_t j = 0; j < svc->n_listen; j++)
			if (!listener_new(ns->grp, svc, &svc->listen[j]))
				fatalx("out of memory");
	}
	b = &t->names[hash_name(name) & (t->nbuckets - 1)];
	ns->by_name = *b;
	*b = ns;
	TAILQ_INSERT_TAIL(&t->all, ns, entry);
	t->n++;
	return ns;
}

static void ns_free(struct nstable *t, struct ns *ns)
{
	struct ns **p;

	for (p = &t->names[hash_name(ns->name) & (t->nbuckets - 1)]; *p;
	     p = &(*p)->by_name)
		if (*p == ns) {
			*p = ns->by_name;
			break;
		}
	id_unlink(t, ns);
	TAILQ_REMOVE(&t->all, ns, entry);
	t->n--;
	listener_group_free(ns->grp);
	event_free(ns->retry);
	free(ns->name);
	free(ns);
}

static bool wanted(const struct ns *ns)
{
	return ns->in_config || ns->in_dir || ns->provisioned;
}

/* The file of a served namespace vanished or holds another namespace:
 * close its listeners (a listener keeps a deleted namespace alive). */
static void ns_check(struct nstable *t, struct ns *ns)
{
	struct netns_id id;
	int r;

	if (!ns->have_id)
		return;
	r = netns_stat(t->cfg->netns_dir, ns->name, &id);
	if (r == 0 && netns_id_eq(&id, &ns->id))
		return;
	log_info("ns %s: namespace %s; closing its listeners", ns->name,
		 r == 0 ? "re-created" : "gone");
	close_all(ns);
	id_unlink(t, ns);
}

/* Ask ahead for the listeners of NS that ns_try() will ask for, if they
 * are not too many and the budget has room for them all: into the next
 * free slot of t->pre.  *ROOM: listeners the budget still takes. */
static void pre_ask(struct nstable *t, struct ns *ns, size_t slot,
		    size_t *room)
{
	struct pre *p = &t->pre[slot];
	struct listener *l;
	size_t n = 0;

	p->q.n = 0;
	p->q.sent = false;
	if (t->closed)
		return;
	TAILQ_FOREACH(l, &ns->grp->members, entry) {
		if (l->state == LISTENER_LISTENING)
			continue;
		if (n == PRIV_LISTEN_MAX || n == *room)
			return;		/* as ns_try() finds it */
		p->ls[n] = l;
		p->dgram[n] = l->origin.svc->protocol == CONFIG_PROTO_UDP;
		p->addrs[n++] = l->addr;
	}
	if (!n)
		return;
	*room -= n;
	p->ns = ns;
	p->q.ns = ns->name;
	p->q.addrs = p->addrs;
	p->q.dgram = p->dgram;
	p->q.n = n;
	ns->pre = p;
}

/* Ask ahead for the namespaces V[0..K) (K at most PRIVC_BATCH_MAX) into
 * the slots from SLOT, and send. */
static void ask_ahead(struct nstable *t, struct ns *const *v, size_t k,
		      size_t slot, size_t *room)
{
	struct privc_listen *q[PRIVC_BATCH_MAX];
	size_t m = 0;

	for (size_t j = 0; j < k; j++) {
		pre_ask(t, v[j], slot + j, room);
		if (v[j]->pre)
			q[m++] = &v[j]->pre->q;
	}
	if (m)
		privc_listen_send(t->priv, q, m);
}

/* ns_try_now() for the N namespaces V.  At start-up and after a directory
 * rescan these are thousands, and a LISTEN each, one after the other, is
 * a round trip to the helper each, both processes mostly waiting for the
 * other to be woken.  So the listeners of PRIVC_BATCH_MAX namespaces at a
 * time are asked for ahead, the next batch while this one's are opened
 * here: the helper makes sockets while the engine takes them.  ns_try()
 * takes its answer from there when it asks for the same listeners
 * (pre_take()); what a namespace did not take (it turned out to be a
 * second name, the host's, or its listeners changed meanwhile) is
 * closed. */
static void try_many(struct nstable *t, struct ns *const *v, size_t n)
{
	size_t room = listener_set_room_for(t->ls), i, k, next, k2 = 0;
	unsigned half = 0;

	k = n < PRIVC_BATCH_MAX ? n : PRIVC_BATCH_MAX;
	ask_ahead(t, v, k, 0, &room);
	for (i = 0; i < n; i += k, k = k2, half ^= 1) {
		privc_listen_recv(t->priv);
		next = i + k;
		k2 = n - next < PRIVC_BATCH_MAX ? n - next : PRIVC_BATCH_MAX;
		if (k2)
			ask_ahead(t, v + next, k2, (half ^ 1) * PRIVC_BATCH_MAX,
				  &room);
		for (size_t j = i; j < next; j++) {
			ns_try_now(v[j]);
			pre_drop(v[j]);
		}
	}
	privc_listen_recv(t->priv);	/* nothing is left asked */
}

/* try_many() for every namespace of the table, or, without the memory
 * for the list, one after the other. */
static void try_all(struct nstable *t)
{
	struct ns **v = calloc(t->n ? t->n : 1, sizeof(*v));
	struct ns *ns;
	size_t n = 0;

	if (!v) {
		TAILQ_FOREACH(ns, &t->all, entry)
			ns_try_now(ns);
		return;
	}
	TAILQ_FOREACH(ns, &t->all, entry)
		if (n < t->n)
			v[n++] = ns;
	try_many(t, v, n);
	free(v);
}

void nstable_sync(struct nstable *t)
{
	const struct config *cfg = t->cfg;
	struct ns *ns, *next;
	char **names = NULL;
	int n = 0;

	TAILQ_FOREACH(ns, &t->all, entry)
		ns->in_dir = false;
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		ns_get(t, cfg->namespaces[i])->in_config = true;
	if (cfg->ns_all) {
		n = netns_list(cfg->netns_dir, &names);
		if (n < 0) {
			if (n != -ENOENT)
				log_warnx("cannot list %s: %s", cfg->netns_dir,
					  strerror(-n));
			n = 0;
		}
		for (int i = 0; i < n; i++)
			if (config_serves_ns(cfg, names[i]))
				ns_get(t, names[i])->in_dir = true;
		netns_names_free(names, n);
	}
	/* identities first, so that a name that now holds the namespace of
	 * a vanished one is not taken for a duplicate */
	for (ns = TAILQ_FIRST(&t->all); ns; ns = next) {
		next = TAILQ_NEXT(ns, entry);
		if (!wanted(ns)) {
			log_info("ns %s: namespace gone; closing its listeners",
				 ns->name);
			ns_free(t, ns);
			continue;
		}
		ns_check(t, ns);
	}
	try_all(t);
}

void nstable_sync_names(struct nstable *t, char *const *names, size_t n)
{
	const struct config *cfg = t->cfg;
	struct netns_id id;
	struct ns *ns, **v;
	size_t k = 0;
	bool here, had, let_go = false;
	size_t i;

	/* identities first, as in nstable_sync() (a rename is two names) */
	for (i = 0; i < n; i++) {
		here = cfg->ns_all && config_serves_ns(cfg, names[i]) &&
		       netns_stat(cfg->netns_dir, names[i], &id) != -ENOENT;
		ns = here ? ns_get(t, names[i]) : find(t, names[i]);
		if (!ns)
			continue;
		ns->in_dir = here;
		had = ns->have_id;
		if (!wanted(ns)) {
			log_info("ns %s: namespace gone; closing its listeners",
				 ns->name);
			ns_free(t, ns);
			let_go |= had;
			continue;
		}
		ns_check(t, ns);
		let_go |= had && !ns->have_id;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		if (!(ns = find(t, names[i])))
			continue;
		if (v)
			v[k++] = ns;
		else
			ns_try_now(ns);
	}
	if (v)
		try_many(t, v, k);
	free(v);
	/* a namespace let go may be served under a name refused as its
	 * second one: those are looked at again (no system call for the
	 * others) */
	if (let_go)
		TAILQ_FOREACH(ns, &t->all, entry)
			if (ns->refused)
				ns_try_now(ns);
}

void nstable_provisioned(struct nstable *t, const char *name, bool present)
{
	struct ns *ns = present ? ns_get(t, name) : find(t, name);

	if (!ns)
		return;
	ns->provisioned = present;
	if (!wanted(ns)) {
		ns_free(t, ns);
		return;
	}
	ns_check(t, ns);
	ns_try_now(ns);
}

int nstable_listeners(const struct nstable *t, const char *name,
		      unsigned *up, unsigned *total, char *why, size_t len)
{
	const struct ns *ns = find(t, name);
	const struct listener *l;
	size_t off = 0;

	*up = *total = 0;
	if (len)
		why[0] = '\0';
	if (!ns)
		return -ENOENT;
	TAILQ_FOREACH(l, &ns->grp->members, entry) {
		int n;

		++*total;
		if (l->state == LISTENER_LISTENING) {
			++*up;
			continue;
		}
		if (off >= len)
			continue;
		n = snprintf(why + off, len - off, "%s%s %s: %s", off ? "; " : "",
			     l->origin.svc->name, l->addr->text,
			     l->err ? strerror(l->err) :
			     ns->err ? strerror(ns->err) : "not open");
		if (n > 0)
			off += (size_t)n;
	}
	return 0;
}

/* Match the listeners of NS to the table's (new) config: a listener whose
 * (service, address) stays keeps its socket and takes the new settings;
 * one no longer wanted closes (its connections go on); new ones are made,
 * closed, for ns_try() to open after the old ones have let go. */
static void ns_rebuild(struct nstable *t, struct ns *ns)
{
	const struct config *cfg = t->cfg;
	struct listener_limits lim;
	struct listener *l, *next;

	TAILQ_FOREACH(l, &ns->grp->members, entry)
		l->mark = false;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *svc = &cfg->services[i];

		if (!config_service_in_ns(svc, ns->name))
			continue;
		for (size_t j = 0; j < svc->n_listen; j++) {
			const struct config_sockaddr *a = &svc->listen[j];

			TAILQ_FOREACH(l, &ns->grp->members, entry)
				if (!l->mark &&
				    l->origin.svc->protocol == svc->protocol &&
				    !strcmp(l->origin.svc->name, svc->name) &&
				    !strcmp(l->addr->text, a->text))
					break;
			if (l) {
				if (listener_set_service(l, svc) < 0)
					fatalx("out of memory");
			} else if (!(l = listener_new(ns->grp, svc, a))) {
				fatalx("out of memory");
			}
			l->mark = true;
		}
	}
	for (l = TAILQ_FIRST(&ns->grp->members); l; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (l->mark)
			continue;
		if (l->state == LISTENER_LISTENING)
			log_info("ns %s: %s: no longer listening on %s",
				 ns->name, l->origin.svc->name, l->addr->text);
		listener_remove(l);
	}
	/* connections of listeners gone follow their service's new
	 * timeouts, as those of the listeners kept do */
	for (size_t i = 0; i < cfg->n_services; i++)
		if (config_service_in_ns(&cfg->services[i], ns->name) &&
		    listener_group_follow(ns->grp, &cfg->services[i]) < 0)
			fatalx("out of memory");
	limits_of(cfg, &lim);
	listener_group_limits(ns->grp, &lim);
}

void nstable_reload(struct nstable *t, const struct config *cfg)
{
	struct ns *ns;

	t->cfg = cfg;
	TAILQ_FOREACH(ns, &t->all, entry)
		ns->in_config = false;
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		ns_get(t, cfg->namespaces[i])->in_config = true;
	TAILQ_FOREACH(ns, &t->all, entry)
		ns_rebuild(t, ns);
	nstable_sync(t);
}

void nstable_close_all(struct nstable *t)
{
	struct ns *ns;

	t->closed = true;
	TAILQ_FOREACH(ns, &t->all, entry) {
		close_all(ns);
		evtimer_del(ns->retry);
	}
}

void nstable_foreach(const struct nstable *t, nstable_each_fn fn, void *arg)
{
	const struct ns *ns;

	TAILQ_FOREACH(ns, &t->all, entry)
		fn(arg, ns->name, ns->grp, ns->err);
}

int nstable_get(const struct nstable *t, const char *name,
		nstable_each_fn fn, void *arg)
{
	const struct ns *ns = find(t, name);

	if (!ns)
		return -ENOENT;
	fn(arg, ns->name, ns->grp, ns->err);
	return 0;
}

size_t nstable_count(const struct nstable *t)
{
	return t->n;
}

unsigned nstable_listener_count(const struct nstable *t)
{
	const struct ns *ns;
	const struct listener *l;
	unsigned n = 0;

	TAILQ_FOREACH(ns, &t->all, entry)
		TAILQ_FOREACH(l, &ns->grp->members, entry)
			n++;
	return n;
}

unsigned nstable_listening_count(const struct nstable *t)
{
	return listener_set_open_count(t->ls);
}

struct nstable *nstable_new(struct event_base *base, const struct config *cfg,
			    struct listener_set *ls, struct privc *priv)
{
	struct nstable *t = calloc(1, sizeof(*t));
	struct stat st;

	if (!t)
		return NULL;
	t->base = base;
	t->cfg = cfg;
	t->ls = ls;
	t->priv = priv;
	TAILQ_INIT(&t->all);
	if (grow(t) < 0) {
		free(t);
		return NULL;
	}
	/* the daemon's own namespace, never served: it would put
	 * listeners on the host */
	if (stat("/proc/self/ns/net", &st) == 0) {
		t->host.dev = st.st_dev;
		t->host.ino = st.st_ino;
		t->have_host = true;
	}
	return t;
}

void nstable_free(struct nstable *t)
{
	struct ns *ns;

	if (!t)
		return;
	nstable_close_all(t);	/* nothing is accepted from here on */
	while ((ns = TAILQ_FIRST(&t->all)))
		ns_free(t, ns);
	free(t->names);
	free(t->ids);
	free(t);
}
