/* SPDX-License-Identifier: MIT */
/* hosts: provisioned namespaces, the hosts file naming them, and keeping
 * them whole.
 *
 * Keeping them whole: a link monitor (rtnetlink multicast) reports host
 * links deleted.  If one was the host end of a provisioned veth and the
 * namespace is still there, the namespace is provisioned again (the
 * provisioner reconciles: it adds what is missing and touches nothing
 * else); if the namespace went too (`ip netns del`), it is no longer
 * provisioned and nothing is re-created behind the admin's back.  When the
 * monitor overruns, the events lost are unknown: every provisioned
 * namespace is reconciled.  A namespace is reconciled at most once a
 * second, and one whose reconciliation failed waits for the next explicit
 * provision, so that a lasting conflict cannot loop.
 *
 * The file is for the host's nginx, dnsmasq or /etc/hosts includes:
 *   100.64.9.2 alice.users.example.org
 *   fd75:6272:7370:9::2 alice.users.example.org
 * It is written to PATH.tmp and renamed over PATH, so readers see either
 * the old or the new file, never half of one.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/daemon.h"
#include "engine/hosts.h"
#include "engine/log.h"
#include "engine/listener.h"
#include "netns/monitor.h"
#include "netns/netns.h"
#include "netns/provision.h"

struct provisioned {
	TAILQ_ENTRY(provisioned) entry;
	char *user;
	struct prov_spec spec;
	struct timeval reconciled;	/* last automatic reconciliation */
	bool broken;			/* it failed: wait for a provision */
	bool busy;			/* a reconciliation is running */
};

static struct provisioned *find(const struct daemon *d, const char *user)
{
	struct provisioned *p;

	TAILQ_FOREACH(p, &d->provisioned, entry)
		if (strcmp(p->user, user) == 0)
			return p;
	return NULL;
}

void provisioned_set(struct daemon *d, const char *user,
		     const struct prov_spec *spec, bool present)
{
	struct provisioned *p = find(d, user);
	const struct config_provision *cp = &d->cfg->provision;
	int r;

	if (present && !p) {
		p = calloc(1, sizeof(*p));
		if (!p || !(p->user = strdup(user)))
			fatal("provisioned_set");
		TAILQ_INSERT_TAIL(&d->provisioned, p, entry);
	} else if (!present && p) {
		TAILQ_REMOVE(&d->provisioned, p, entry);
		free(p->user);
		free(p);
		p = NULL;
	}
	if (p) {
		p->spec = *spec;
		p->broken = false;
	}
	if (!cp->hosts_file)
		return;
	r = hosts_write(d, cp->hosts_file, cp->domain);
	if (r < 0)
		log_warnx("writing %s: %s", cp->hosts_file, strerror(-r));
}

void provisioned_each_ns(struct daemon *d,
			 void (*fn)(struct daemon *d, const char *name))
{
	struct provisioned *p;

	TAILQ_FOREACH(p, &d->provisioned, entry)
		fn(d, p->spec.ns);
}

void provisioned_free(struct daemon *d)
{
	struct provisioned *p;

	while ((p = TAILQ_FIRST(&d->provisioned))) {
		TAILQ_REMOVE(&d->provisioned, p, entry);
		free(p->user);
		free(p);
	}
}

int hosts_write(const struct daemon *d, const char *path, const char *domain)
{
	const struct provisioned *p;
	char tmp[4096], a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
	FILE *f;
	int r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "# written by nsrelayd: provisioned namespaces\n");
	TAILQ_FOREACH(p, &d->provisioned, entry) {
		inet_ntop(AF_INET, &p->spec.v4_ns, a4, sizeof(a4));
		inet_ntop(AF_INET6, &p->spec.v6_ns, a6, sizeof(a6));
		fprintf(f, "%s %s%s%s\n%s %s%s%s\n", a4, p->user,
			domain ? "." : "", domain ? domain : "", a6, p->user,
			domain ? "." : "", domain ? domain : "");
	}
	if (ferror(f) | (fflush(f) != 0) | (fsync(fileno(f)) != 0))
		r = -(errno ? errno : EIO);
	if (fclose(f) != 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

/* ---- keeping provisioned namespaces whole ---------------------------- */

struct reconcile {
	struct daemon *d;
	char *user;
};

static void reconciled(void *arg, int err, const char *msg)
{
	struct reconcile *q = arg;
	struct provisioned *p = find(q->d, q->user);

	if (p) {
		p->busy = false;
		p->broken = err != 0;
		if (err)
			log_warnx("ns %s: provisioning %s again failed: %s; "
				  "waiting for the next provision request",
				  p->spec.ns, q->user,
				  msg ? msg : strerror(-err));
		else
			log_info("ns %s: provisioned %s again", p->spec.ns,
				 q->user);
	}
	ns_sync(q->d);
	free(q->user);
	free(q);
}

static void reconcile(struct daemon *d, struct provisioned *p,
		      const char *why)
{
	struct reconcile *q;
	struct netns_id id;
	struct timeval now;

	if (p->busy || p->broken)
		return;
	event_base_gettimeofday_cached(d->base, &now);
	if (p->reconciled.tv_sec && now.tv_sec - p->reconciled.tv_sec < 1)
		return;
	if (netns_stat(d->cfg->netns_dir, p->spec.ns, &id) < 0) {
		log_info("ns %s: gone with %s; %s is no longer provisioned",
			 p->spec.ns, why, p->user);
		provisioned_set(d, p->user, &p->spec, false);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q || !(q->user = strdup(p->user))) {
		free(q);
		log_warnx("ns %s: cannot reconcile: out of memory", p->spec.ns);
		return;
	}
	q->d = d;
	log_warnx("ns %s: %s; provisioning %s again", p->spec.ns, why,
		  p->user);
	p->reconciled = now;
	prov_forget(d->prov, p->spec.ns);
	if (prov_provision(d->prov, &p->spec, reconciled, q) < 0) {
		free(q->user);
		free(q);
		return;
	}
	p->busy = true;
}

static void link_gone(void *arg, const char *ifname)
{
	struct daemon *d = arg;
	struct provisioned *p;
	char why[64];

	TAILQ_FOREACH(p, &d->provisioned, entry)
		if (strcmp(p->spec.host_if, ifname) == 0) {
			snprintf(why, sizeof(why), "host link %s deleted",
				 ifname);
			reconcile(d, p, why);
			return;
		}
}

static void monitor_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct provisioned *p, *next;
	int r = monitor_read(fd, link_gone, d);

	if (r == -ENOBUFS) {
		log_warnx("link monitor overran: link events were lost; "
			  "reconciling every provisioned namespace");
		for (p = TAILQ_FIRST(&d->provisioned); p; p = next) {
			next = TAILQ_NEXT(p, entry);
			p->reconciled.tv_sec = 0;
			reconcile(d, p, "link events lost");
		}
	} else if (r < 0) {
		log_warnx("link monitor: %s", strerror(-r));
	}
}

int provisioned_watch(struct daemon *d)
{
	d->monitor_fd = monitor_open();
	if (d->monitor_fd < 0)
		return d->monitor_fd;
	d->monitor_ev = event_new(d->base, d->monitor_fd,
				  EV_READ | EV_PERSIST, monitor_cb, d);
	if (!d->monitor_ev || event_add(d->monitor_ev, NULL) < 0) {
		close(d->monitor_fd);
		return -ENOMEM;
	}
	return 0;
}

void provisioned_unwatch(struct daemon *d)
{
	if (!d->monitor_ev)
		return;
	event_free(d->monitor_ev);
	close(d->monitor_fd);
	d->monitor_ev = NULL;
}
