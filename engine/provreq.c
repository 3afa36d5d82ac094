/* SPDX-License-Identifier: MIT */
/* provreq: requests to provision or deprovision a user's namespace.
 *
 * Theory of operation
 *
 * Requests come from control clients and from start-up (the config's
 * users, the users of the state file).  Each user has a FIFO of jobs; only
 * the first runs.  A job looks the user up (NSS: on a worker thread, since
 * an LDAP or sssd look-up can take seconds and the loop must not wait for
 * it; netns/offload.c), derives the namespace's
 * spec from the pool, holds the user against link-monitor repairs, and
 * calls the provisioner.  When it ends, every waiter of the job is told,
 * the provisioned set is updated (which opens or closes the listeners) and
 * the next job of the user starts.  So a deprovision that comes while a
 * provision runs waits for it, and the kernel ends in the state of the last
 * request answered; concurrent identical requests share one job.
 */
#include <errno.h>
#include <pwd.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "config/config.h"
#include "engine/log.h"
#include "engine/provisioned.h"
#include "engine/provreq.h"
#include "netns/offload.h"
#include "netns/provision.h"

struct provreq_waiter {
	TAILQ_ENTRY(provreq_waiter) link;
	struct job *job;
	provreq_done_fn done;
	void *arg;
};

struct job {
	TAILQ_ENTRY(job) link;		/* in its user's queue */
	struct uq *uq;
	bool deprovision;
	bool running;
	struct prov_spec spec;
	/* the look-up, filled on the worker thread */
	char *name;			/* the user's name, for the worker */
	uid_t uid;
	int lookup_err;			/* 0 found, else errno or ENOENT */
	TAILQ_HEAD(, provreq_waiter) waiters;
};

/* The queue of one user with work to do. */
struct uq {
	LIST_ENTRY(uq) link;
	struct provreq *pq;
	char *user;
	TAILQ_HEAD(job_list, job) jobs;
};

struct provreq {
	struct event_base *base;
	const struct config *cfg;
	struct prov *prov;
	struct provisioned_set *provd;
	struct offload *nss;		/* look-ups off the loop */
	bool closing;
	LIST_HEAD(, uq) queues;
};

static void job_run(struct job *j);

static struct uq *uq_get(struct provreq *pq, const char *user)
{
	struct uq *q;

	LIST_FOREACH(q, &pq->queues, link)
		if (strcmp(q->user, user) == 0)
			return q;
	q = calloc(1, sizeof(*q));
	if (!q || !(q->user = strdup(user))) {
		free(q);
		return NULL;
	}
	q->pq = pq;
	TAILQ_INIT(&q->jobs);
	LIST_INSERT_HEAD(&pq->queues, q, link);
	return q;
}

static void uq_free(struct uq *q)
{
	LIST_REMOVE(q, link);
	free(q->user);
	free(q);
}

/* Tell the waiters, free the job, start the next one of the user. */
static void job_end(struct job *j, int err, const char *msg)
{
	struct uq *q = j->uq;
	struct provreq_waiter *w;
	struct job *next;

	while ((w = TAILQ_FIRST(&j->waiters))) {
		TAILQ_REMOVE(&j->waiters, w, link);
		w->done(w->arg, err, msg, q->user, j->spec.ns);
		free(w);
	}
	TAILQ_REMOVE(&q->jobs, j, link);
	free(j->name);
	free(j);
	next = TAILQ_FIRST(&q->jobs);
	if (next)
		job_run(next);
	else
		uq_free(q);
}

static void prov_done(void *arg, int err, const char *msg)
{
	struct job *j = arg;
	struct provreq *pq;
	const char *user, *what;

	if (err == -ECANCELED)
		return;		/* shutting down: J may be gone already */
	pq = j->uq->pq;
	user = j->uq->user;
	what = j->deprovision ? "deprovisioning" : "provisioning";
	provisioned_hold(pq->provd, user, false);
	if (err) {
		log_warnx("ns %s: %s for %s failed: %s", j->spec.ns, what,
			  user, msg ? msg : strerror(-err));
	} else {
		log_info("ns %s: %sprovisioned for %s", j->spec.ns,
			 j->deprovision ? "de" : "", user);
		/* listeners are open (or closed) before anyone is told */
		provisioned_set_user(pq->provd, user, &j->spec,
				     !j->deprovision);
	}
	job_end(j, err, msg);
}

/* On the worker thread: only the job's own fields. */
static void lookup_work(void *arg)
{
	struct job *j = arg;
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	r = getpwnam_r(j->name, &pw, buf, sizeof(buf), &res);
	if (res) {
		j->uid = pw.pw_uid;
		j->lookup_err = 0;
	} else {
		j->lookup_err = r ? r : ENOENT;
	}
}

static void lookup_done(void *arg)
{
	struct job *j = arg;
	struct provreq *pq = j->uq->pq;
	const char *user = j->uq->user;
	char why[256];
	int r;

	if (pq->closing)
		return;
	if (j->lookup_err) {
		snprintf(why, sizeof(why), "no such user \"%s\"%s%s", user,
			 j->lookup_err != ENOENT ? ": " : "",
			 j->lookup_err != ENOENT ? strerror(j->lookup_err) :
			 "");
		r = -ENOENT;
	} else if (j->uid == 0) {
		snprintf(why, sizeof(why), "\"%s\" has uid 0: root's network "
			 "namespace is the host's, never provisioned", user);
		r = -EPERM;
	} else {
		r = prov_spec_derive(&pq->cfg->provision.pool, user, j->uid,
				     config_provision_index(pq->cfg, user),
				     &j->spec, why, sizeof(why));
	}
	if (r < 0) {
		log_warnx("%sprovisioning for %s: %s",
			  j->deprovision ? "de" : "", user, why);
		job_end(j, r, why);
		return;
	}
	provisioned_hold(pq->provd, user, true);
	/* forgotten before its links go: they must not be put back */
	if (j->deprovision)
		provisioned_set_user(pq->provd, user, &j->spec, false);
	r = j->deprovision ?
	    prov_deprovision(pq->prov, &j->spec, prov_done, j) :
	    prov_provision(pq->prov, &j->spec, prov_done, j);
	if (r < 0) {
		provisioned_hold(pq->provd, user, false);
		job_end(j, r, strerror(-r));
	}
}

static void job_run(struct job *j)
{
	struct provreq *pq = j->uq->pq;
	int r;

	j->running = true;
	j->name = strdup(j->uq->user);
	r = j->name ? offload_run(pq->nss, lookup_work, lookup_done, j) :
		      -ENOMEM;
	if (r < 0) {
		log_warnx("provisioning for %s: cannot look the user up: %s",
			  j->uq->user, strerror(-r));
		job_end(j, r, "cannot look the user up");
	}
}

/* Run J from the loop, never from inside provreq_submit(). */
static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	job_run(arg);
}

struct provreq_waiter *provreq_submit(struct provreq *pq, const char *user,
				      bool deprovision, provreq_done_fn done,
				      void *arg)
{
	struct provreq_waiter *w = calloc(1, sizeof(*w));
	struct uq *q = w ? uq_get(pq, user) : NULL;
	struct job *j;
	bool join;

	if (!q) {
		free(w);
		return NULL;
	}
	/* an identical call not started yet is joined; a running one, even
	 * answered already, never is */
	j = TAILQ_LAST(&q->jobs, job_list);
	join = j && !j->running && j->deprovision == deprovision;
	log_debug("%sprovision %s: %s", deprovision ? "de" : "", user,
		  join ? "joins the one queued" : j ? "queued" : "runs now");
	if (!join) {
		j = calloc(1, sizeof(*j));
		if (!j) {
			if (TAILQ_EMPTY(&q->jobs))
				uq_free(q);
			free(w);
			return NULL;
		}
		j->uq = q;
		j->deprovision = deprovision;
		TAILQ_INIT(&j->waiters);
		TAILQ_INSERT_TAIL(&q->jobs, j, link);
		if (TAILQ_FIRST(&q->jobs) == j &&
		    event_base_once(pq->base, -1, EV_TIMEOUT, kick_cb, j,
				    NULL) < 0) {
			TAILQ_REMOVE(&q->jobs, j, link);
			free(j);
			if (TAILQ_EMPTY(&q->jobs))
				uq_free(q);
			free(w);
			return NULL;
		}
	}
	w->job = j;
	w->done = done;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&j->waiters, w, link);
	return w;
}

void provreq_cancel(struct provreq_waiter *w)
{
	TAILQ_REMOVE(&w->job->waiters, w, link);
	free(w);
}

struct provreq *provreq_new(struct event_base *base, const struct config *cfg,
			    struct prov *prov,
			    struct provisioned_set *provd)
{
	struct provreq *pq = calloc(1, sizeof(*pq));

	if (!pq)
		return NULL;
	pq->base = base;
	pq->cfg = cfg;
	pq->prov = prov;
	pq->provd = provd;
	LIST_INIT(&pq->queues);
	pq->nss = offload_new(base);
	if (!pq->nss) {
		free(pq);
		return NULL;
	}
	return pq;
}

void provreq_set_config(struct provreq *pq, const struct config *cfg)
{
	pq->cfg = cfg;
}

void provreq_free(struct provreq *pq)
{
	struct uq *q;
	struct job *j;
	struct provreq_waiter *w;

	if (!pq)
		return;
	pq->closing = true;
	offload_free(pq->nss);		/* look-ups end; nothing starts */
	while ((q = LIST_FIRST(&pq->queues))) {
		while ((j = TAILQ_FIRST(&q->jobs))) {
			while ((w = TAILQ_FIRST(&j->waiters))) {
				TAILQ_REMOVE(&j->waiters, w, link);
				free(w);
			}
			TAILQ_REMOVE(&q->jobs, j, link);
			free(j->name);
			free(j);
		}
		uq_free(q);
	}
	free(pq);
}
