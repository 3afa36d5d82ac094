/* SPDX-License-Identifier: MIT */
/* provision: jobs - the per-name queue, the run queue, the public API.
 *
 * Theory of operation
 *
 *
 * A job provisions (or deprovisions) one namespace.  Jobs for the same name
 * form a FIFO on a per-name entry: only the first one runs; a new call that is
 * identical to the last job of its name joins it as one more waiter instead of
 * running again.  At most `parallel` jobs run at once (each holds a namespace
 * descriptor and a netlink socket inside the namespace while it runs; both
 * are closed when it ends, so descriptors do not grow with the number of
 * namespaces; a deprovision that only waits for the kernel to tear its
 * namespace down holds neither and is "parked": it no longer counts).
 * With prov_set_early(), a deprovision tells its waiters as soon as its
 * file is gone (job_answer: they move to prov->told, called back on
 * the next turn) and stays first of its name until the veth is gone too;
 * an answered job is not joined: an identical call queues behind it.
 * The entry remembers a namespace made ready, with the nsfs
 * inode of its file: a later identical provision that finds the same inode
 * there succeeds without netlink work.
 *
 *
 * The work of a job is in the other files of the module (see prov_int.h):
 * prov_plan.c runs its steps, prov_send.c sends their requests,
 * prov_read.c reads the answers, prov_ns.c handles the namespace file.
 * Callbacks never run inside the call that started a job: finished jobs
 * wait on a list that an event empties on the next loop turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <libmnl/libmnl.h>

#include "netns/netns.h"
#include "netns/offload.h"
#include "netns/nsops.h"
#include "netns/prov_int.h"

static size_t ent_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static struct prov_ent **ent_slot(struct prov *prov, const char *name)
{
	struct prov_ent **pp;

	pp = &prov->tab[ent_hash(name) & (prov->tab_size - 1)];
	while (*pp && strcmp((*pp)->name, name))
		pp = &(*pp)->hnext;
	return pp;
}

static int ent_grow(struct prov *prov)
{
	struct prov_ent **tab, *e, *next;
	size_t size = prov->tab_size * 2, i, h;

	tab = calloc(size, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (i = 0; i < prov->tab_size; i++) {
		for (e = prov->tab[i]; e; e = next) {
			next = e->hnext;
			h = ent_hash(e->name) & (size - 1);
			e->hnext = tab[h];
			tab[h] = e;
		}
	}
	free(prov->tab);
	prov->tab = tab;
	prov->tab_size = size;
	return 0;
}

static struct prov_ent *ent_get(struct prov *prov, const char *name)
{
	struct prov_ent **pp = ent_slot(prov, name), *e = *pp;

	if (e)
		return e;
	if (prov->n_ent >= prov->tab_size && ent_grow(prov) == 0)
		pp = ent_slot(prov, name);
	e = calloc(1, sizeof(*e) + strlen(name) + 1);
	if (!e)
		return NULL;
	strcpy(e->name, name);
	TAILQ_INIT(&e->jobs);
	*pp = e;
	prov->n_ent++;
	return e;
}

static void ent_put(struct prov *prov, struct prov_ent *e)
{
	struct prov_ent **pp;

	if (e->ready || !TAILQ_EMPTY(&e->jobs))
		return;
	pp = ent_slot(prov, e->name);
	*pp = e->hnext;
	prov->n_ent--;
	free(e);
}

static void job_release(struct prov_job *j)
{
	prov_gone_unwatch(j);
	prov_ns_close(j);
	nl_free(j->nsnl);
	j->nsnl = NULL;
	if (j->timer)
		event_del(j->timer);
	free(j->links);
	j->links = NULL;
	j->nlinks = 0;
	j->peer = j->lo = NULL;
}

static void job_free(struct prov_job *j)
{
	struct prov_waiter *w, *next;

	job_release(j);
	if (j->timer)
		event_free(j->timer);
	for (w = j->waiters; w; w = next) {
		next = w->next;
		free(w);
	}
	free(j);
}

/* Run the callbacks of a finished job, then free it. */
static void job_deliver(struct prov_job *j)
{
	struct prov *prov = j->prov;
	struct prov_waiter *w;

	if (j->answered && j->err && !prov->dying && prov->late_cb)
		prov->late_cb(prov->late_arg, j->spec.ns, j->msg);

	while ((w = j->waiters)) {
		j->waiters = w->next;
		w->cb(w->arg, j->err, j->err ? j->msg : NULL);
		free(w);
	}
	job_free(j);
}

/* A deprovision's file is gone and the kernel is taking its veth: with
 * prov_set_early(), its callbacks run now (on the next loop turn) and the
 * job goes on holding its name. */
static void job_answer(struct prov_job *j)
{
	struct prov *prov = j->prov;

	if (!prov->early || j->answered)
		return;
	j->answered = true;
	if (!j->waiters)
		return;
	*prov->told_tail = j->waiters;
	prov->told_tail = j->wtail;
	j->waiters = NULL;
	j->wtail = &j->waiters;
	event_active(prov->done_ev, EV_TIMEOUT, 0);
}

/* The job is over (success or j->err): wake the next job of its name and
 * queue its callbacks for the next loop turn. */
static void job_finish(struct prov_job *j)
{
	struct prov *prov = j->prov;
	struct prov_ent *e = j->ent;
	struct prov_job *next;

	j->finished = true;
	if (j->op == OP_UP && !j->err) {
		e->ready = true;
		e->spec = j->spec;
		e->dev = j->ns_id.dev;
		e->ino = j->ns_id.ino;
	} else {
		e->ready = false;
	}
	job_release(j);
	if (j->parked) {
		TAILQ_REMOVE(&prov->parked, j, q);
	} else {
		TAILQ_REMOVE(&prov->running, j, q);
		prov->active--;
	}
	TAILQ_REMOVE(&e->jobs, j, same);
	next = TAILQ_FIRST(&e->jobs);
	if (next)
		TAILQ_INSERT_TAIL(&prov->runq, next, q);
	j->ent = NULL;
	ent_put(prov, e);
	TAILQ_INSERT_TAIL(&prov->done, j, q);
	event_active(prov->done_ev, EV_TIMEOUT, 0);
	event_active(prov->kick, EV_TIMEOUT, 0);
}

static void job_wake_cb(evutil_socket_t fd, short what, void *arg);

/* Sleep ms, then run j again (j->sleeping meanwhile).  0 or -ENOMEM
 * (recorded). */
static int job_sleep(struct prov_job *j, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!j->timer) {
		j->timer = evtimer_new(j->prov->base, job_wake_cb, j);
		if (!j->timer) {
			prov_job_error(j, -ENOMEM, "timer: %s", strerror(ENOMEM));
			return -ENOMEM;
		}
	}
	evtimer_add(j->timer, &tv);
	j->sleeping = true;
	return 0;
}

/* j waits for the kernel only and holds no descriptor: stop counting it
 * against the parallel limit (until it finishes). */
static void job_park(struct prov_job *j)
{
	struct prov *prov = j->prov;

	if (j->parked)
		return;
	j->parked = true;
	TAILQ_REMOVE(&prov->running, j, q);
	TAILQ_INSERT_TAIL(&prov->parked, j, q);
	prov->active--;
	event_active(prov->kick, EV_TIMEOUT, 0);
}

/* The one place a job moves on: while it has no request outstanding and
 * does not sleep, prov_plan_next() starts its next step and says what
 * else to do. */
static void job_run(struct prov_job *j)
{
	while (!j->pending && !j->sleeping && !j->finished) {
		switch (prov_plan_next(j)) {
		case PLAN_GO:
			break;
		case PLAN_FINISH:
			job_finish(j);
			return;
		case PLAN_ANSWER:
			job_answer(j);
			break;
		case PLAN_SLEEP:
			job_sleep(j, j->sleep_ms);	/* or j->err */
			break;
		case PLAN_PARK:
			if (job_sleep(j, j->sleep_ms) == 0)
				job_park(j);
			break;
		}
	}
}

static void job_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prov_job *j = arg;

	j->sleeping = false;
	job_run(j);
}

/* prov_job_go(): requests answered, or an event for a sleeping job */
static void job_go(struct prov_job *j)
{
	if (j->sleeping) {
		event_del(j->timer);
		j->sleeping = false;
	}
	job_run(j);
}

void prov_forget(struct prov *prov, const char *name)
{
	struct prov_ent *e = *ent_slot(prov, name);

	if (!e)
		return;
	e->ready = false;
	ent_put(prov, e);
}

static void job_start(struct prov_job *j)
{
	struct prov_ent *e = j->ent;
	struct stat st;

	if (j->op == OP_UP && e->ready && prov_spec_equal(&e->spec, &j->spec) &&
	    stat(j->path, &st) == 0 && st.st_dev == e->dev &&
	    st.st_ino == e->ino) {
		j->ns_id.dev = st.st_dev;
		j->ns_id.ino = st.st_ino;
		job_finish(j);	/* made ready by us, and still there */
		return;
	}
	j->step = S_NS;
	job_run(j);
}

static void prov_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prov *prov = arg;
	struct prov_job *j;

	while (!prov->dying && prov->active < prov->parallel &&
	       (j = TAILQ_FIRST(&prov->runq))) {
		TAILQ_REMOVE(&prov->runq, j, q);
		TAILQ_INSERT_TAIL(&prov->running, j, q);
		prov->active++;
		job_start(j);
	}
}

static void prov_destroy(struct prov *prov)
{
	if (prov->kick)
		event_free(prov->kick);
	if (prov->done_ev)
		event_free(prov->done_ev);
	offload_free(prov->off);
	if (prov->gone_ev)
		event_free(prov->gone_ev);
	if (prov->gone_fd >= 0)
		close(prov->gone_fd);
	if (prov->wsock >= 0)
		close(prov->wsock);	/* the worker is gone */
	free(prov->tab);
	free(prov->dir);
	free(prov);
}

/* Call back the waiters of jobs answered early (job_answer). */
static void deliver_told(struct prov *prov)
{
	struct prov_waiter *w;

	while ((w = prov->told)) {
		prov->told = w->next;
		if (!prov->told)
			prov->told_tail = &prov->told;
		w->cb(w->arg, 0, NULL);
		free(w);
	}
}

static void prov_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prov *prov = arg;
	struct prov_job *j;

	prov->busy++;
	if (!prov->dying)
		deliver_told(prov);
	while (!prov->dying && (j = TAILQ_FIRST(&prov->done))) {
		TAILQ_REMOVE(&prov->done, j, q);
		job_deliver(j);
	}
	if (--prov->busy == 0 && prov->dying)
		prov_destroy(prov);
}

/* ------------------------------------------------------------ API */

/* Done directly, as root (NULL ops): the handle is the descriptor. */
static int direct_ns_open(void *ctx, const char *name, unsigned flags,
			  int *handle, struct netns_id *id, char *why,
			  size_t len)
{
	const struct prov *prov = ctx;

	return nsops_open(prov->dir, name, flags, handle, id, why, len);
}

static int direct_ns_remove(void *ctx, const char *name, char *why,
			    size_t len)
{
	const struct prov *prov = ctx;

	return nsops_remove(prov->dir, name, why, len);
}

static void direct_ns_close(void *ctx, bool worker, int handle)
{
	(void)ctx;
	(void)worker;
	close(handle);
}

static int direct_nl_socket(void *ctx, bool worker, int handle,
			    uint32_t *portid)
{
	(void)ctx;
	(void)worker;
	return nsops_nl_socket(handle, portid);
}

struct prov *prov_new(struct event_base *base, const char *netns_dir,
		      const struct prov_privops *ops)
{
	struct prov *prov;
	int err = -ENOMEM;

	prov = calloc(1, sizeof(*prov));
	if (!prov)
		goto fail;
	prov->base = base;
	prov->go = job_go;
	prov->parallel = PROV_DEFAULT_PARALLEL;
	prov->timeout_ms = NL_DEFAULT_TIMEOUT_MS;
	TAILQ_INIT(&prov->runq);
	TAILQ_INIT(&prov->running);
	TAILQ_INIT(&prov->done);
	TAILQ_INIT(&prov->parked);
	TAILQ_INIT(&prov->watched);
	prov->told_tail = &prov->told;
	prov->gone_fd = -1;
	prov->wsock = -1;
	if (ops) {
		prov->ops = *ops;
	} else {
		prov->ops.ns_open = direct_ns_open;
		prov->ops.ns_remove = direct_ns_remove;
		prov->ops.ns_close = direct_ns_close;
		prov->ops.nl_socket = direct_nl_socket;
		prov->ops.ctx = prov;
	}
	prov->tab_size = 64;
	prov->tab = calloc(prov->tab_size, sizeof(*prov->tab));
	prov->dir = strdup(netns_dir ? netns_dir : PROV_DEFAULT_NETNS_DIR);
	prov->kick = event_new(base, -1, 0, prov_kick_cb, prov);
	prov->done_ev = event_new(base, -1, 0, prov_done_cb, prov);
	if (!prov->tab || !prov->dir || !prov->kick || !prov->done_ev)
		goto fail;
	/* directly: where netns_run_in() returns */
	err = ops ? 0 : netns_host_init();
	if (err)
		goto fail;
	if (!prov_host_nl(prov, &err))
		goto fail;
	return prov;
fail:
	if (prov)
		prov_destroy(prov);
	errno = -err;
	return NULL;
}

void prov_free(struct prov *prov)
{
	struct prov_job *j;
	size_t i;

	if (!prov || prov->dying)
		return;
	prov->dying = true;
	prov->busy++;
	/* the worker first: it finishes what it runs, and completed
	 * operations, like cancelled requests, only count down (dying) */
	offload_free(prov->off);
	prov->off = NULL;
	/* then netlink */
	TAILQ_FOREACH(j, &prov->running, q) {
		/* cppcheck-suppress uninitvar ; it does not follow TAILQ */
		nl_free(j->nsnl);
		j->nsnl = NULL;
	}
	nl_free(prov->host);
	prov->host = NULL;
	for (i = 0; i < prov->tab_size; i++) {
		struct prov_ent *e, *next;

		for (e = prov->tab[i]; e; e = next) {
			next = e->hnext;
			while ((j = TAILQ_FIRST(&e->jobs))) {
				TAILQ_REMOVE(&e->jobs, j, same);
				j->err = -ECANCELED;
				snprintf(j->msg, sizeof(j->msg), "cancelled");
				job_deliver(j);
			}
			free(e);
		}
		prov->tab[i] = NULL;
	}
	deliver_told(prov);	/* they are done: the files are gone */
	while ((j = TAILQ_FIRST(&prov->done))) {
		TAILQ_REMOVE(&prov->done, j, q);
		job_deliver(j);
	}
	if (--prov->busy == 0)
		prov_destroy(prov);
}

void prov_set_timeout(struct prov *prov, unsigned ms)
{
	prov->timeout_ms = ms ? ms : NL_DEFAULT_TIMEOUT_MS;
	if (prov->host)
		nl_set_timeout(prov->host, prov->timeout_ms);
}

void prov_set_early(struct prov *prov, prov_late_cb late, void *arg)
{
	prov->early = true;
	prov->late_cb = late;
	prov->late_arg = arg;
}

void prov_set_parallel(struct prov *prov, unsigned n)
{
	prov->parallel = n ? n : PROV_DEFAULT_PARALLEL;
	event_active(prov->kick, EV_TIMEOUT, 0);
}

static void job_targets(struct prov_job *j)
{
	static const struct {
		int family;
		bool host;
	} tt[T_MAX] = {
		[T_H4] = { AF_INET, true },
		[T_N4] = { AF_INET, false },
		[T_H6] = { AF_INET6, true },
		[T_N6] = { AF_INET6, false },
	};
	int i;

	for (i = 0; i < T_MAX; i++) {
		j->t[i].family = tt[i].family;
		j->t[i].host_side = tt[i].host;
		j->t[i].plen = tt[i].family == AF_INET ? j->spec.v4_plen
						       : j->spec.v6_plen;
	}
	j->t[T_H4].addr = &j->spec.v4_host;
	j->t[T_N4].addr = &j->spec.v4_ns;
	j->t[T_H6].addr = &j->spec.v6_host;
	j->t[T_N6].addr = &j->spec.v6_ns;
}

static int prov_submit(struct prov *prov, enum prov_op op,
		       const struct prov_spec *spec, prov_cb cb, void *arg)
{
	struct prov_waiter *w = NULL;
	struct prov_ent *e = NULL;
	struct prov_job *j = NULL, *last;
	int n, err;

	if (prov->dying)
		return -ESHUTDOWN;
	if (!cb || !prov_spec_valid(spec))
		return -EINVAL;
	err = -ENOMEM;
	w = calloc(1, sizeof(*w));
	e = w ? ent_get(prov, spec->ns) : NULL;
	if (!e)
		goto fail;
	w->cb = cb;
	w->arg = arg;
	last = TAILQ_LAST(&e->jobs, prov_job_list);
	if (last && last->op == op && !last->answered &&
	    prov_spec_equal(&last->spec, spec)) {
		*last->wtail = w;	/* the same work, already coming */
		last->wtail = &w->next;
		return 0;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		goto fail;
	n = snprintf(j->path, sizeof(j->path), "%s/%s", prov->dir, spec->ns);
	if (n < 0 || (size_t)n >= sizeof(j->path)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	j->prov = prov;
	j->ent = e;
	j->op = op;
	j->spec = *spec;
	j->waiters = w;
	j->wtail = &w->next;
	j->nsfd = -1;
	j->nsid = -1;
	job_targets(j);
	TAILQ_INSERT_TAIL(&e->jobs, j, same);
	if (TAILQ_FIRST(&e->jobs) == j) {
		TAILQ_INSERT_TAIL(&prov->runq, j, q);
		event_active(prov->kick, EV_TIMEOUT, 0);
	}
	return 0;
fail:
	free(j);
	free(w);
	if (e)
		ent_put(prov, e);
	return err;
}

int prov_provision(struct prov *prov, const struct prov_spec *spec,
		   prov_cb cb, void *arg)
{
	return prov_submit(prov, OP_UP, spec, cb, arg);
}

int prov_deprovision(struct prov *prov, const struct prov_spec *spec,
		     prov_cb cb, void *arg)
{
	return prov_submit(prov, OP_DOWN, spec, cb, arg);
}
