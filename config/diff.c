/* SPDX-License-Identifier: MIT */
/* diff.c: comparing two loaded configs, for a reload.
 *
 * How it works: a reload parses and checks the new file whole, then asks
 * three questions before anything is applied.  config_fixed_key(): does the
 * new config change something only a restart can (the identity, the
 * namespace directory, the control socket, how provisioned namespaces are
 * named and addressed)?  Then the reload is refused and the old config
 * stays.  config_diff(): what changes, as counts for the log line and the
 * provisioned users that come and go, for the removed-users policy
 * (provision.removed).  config_service_equal(): whether one service, paired
 * by name, serves exactly as before (its listeners and connections can
 * stay untouched).
 *
 * Lists are compared as sets, in linear time with the string set of
 * util.c, so that reordering a list is not a change and ten thousand
 * names cost no more than a parse.
 */
#include "config/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_addr(const struct config_sockaddr *a,
		      const struct config_sockaddr *b)
{
	return a->len == b->len && !memcmp(&a->sa, &b->sa, a->len) &&
	       !strcmp(a->text, b->text);
}

/* Do the name lists A (NA) and B (NB), without duplicates, hold the same
 * names?  -1 when out of memory. */
static int same_names(char *const *a, size_t na, char *const *b, size_t nb)
{
	struct strset set = { NULL, 0, 0 };
	size_t i;
	int r = 1;

	if (na != nb)
		return 0;
	for (i = 0; i < na && !strcmp(a[i], b[i]); i++)
		;
	if (i == na)
		return 1;	/* same order: the usual case */
	for (i = 0; i < na; i++) {
		if (config_set_put(&set, a[i], i)) {
			config_set_free(&set);
			return -1;
		}
	}
	for (i = 0; i < nb && r == 1; i++)
		if (config_set_get(&set, b[i]) == SIZE_MAX)
			r = 0;
	config_set_free(&set);
	return r;
}

/* Listen lists are short (a few addresses): quadratic is fine. */
static bool same_listen(const struct config_service *a,
			const struct config_service *b)
{
	size_t i, j;

	if (a->n_listen != b->n_listen)
		return false;
	for (i = 0; i < a->n_listen; i++) {
		for (j = 0; j < b->n_listen; j++)
			if (same_addr(&a->listen[i], &b->listen[j]))
				break;
		if (j == b->n_listen)
			return false;
	}
	return true;
}

/* Servers are compared in order: with balance: first, the order is the
 * order of failover. */
static bool same_servers(const struct config_service *a,
			 const struct config_service *b)
{
	if (a->n_upstreams != b->n_upstreams)
		return false;
	for (size_t i = 0; i < a->n_upstreams; i++)
		if (!same_addr(&a->upstreams[i], &b->upstreams[i]))
			return false;
	return true;
}

static bool same_check(const struct config_check *a,
		       const struct config_check *b)
{
	return a->protocol == b->protocol && a->interval_ms == b->interval_ms &&
	       a->timeout_ms == b->timeout_ms && a->rise == b->rise &&
	       a->fall == b->fall;
}

bool config_service_equal(const struct config_service *a,
			  const struct config_service *b)
{
	if (a->protocol != b->protocol ||
	    !same_servers(a, b) || a->balance != b->balance ||
	    a->proxy_protocol != b->proxy_protocol || a->source != b->source ||
	    !same_check(&a->check, &b->check) ||
	    a->connect_timeout_ms != b->connect_timeout_ms ||
	    a->idle_timeout_ms != b->idle_timeout_ms ||
	    a->fin_timeout_ms != b->fin_timeout_ms ||
	    a->limits.conns != b->limits.conns ||
	    a->limits.rate != b->limits.rate ||
	    a->limits.burst != b->limits.burst || !same_listen(a, b))
		return false;
	/* Out of memory: "changed", which only costs reopening it. */
	return same_names(a->namespaces, a->n_namespaces, b->namespaces,
			  b->n_namespaces) == 1;
}

/* For each name of B (NB, stride STRIDE bytes, the name a char * at the
 * start of each element) not in A: count it, and copy it into *OUT if OUT
 * is not NULL.  0, or -ENOMEM. */
static int names_missing(const void *a, size_t na, const void *b, size_t nb,
			 size_t stride, size_t *count, char ***out)
{
	struct strset set = { NULL, 0, 0 };
	char **v = NULL, *dup;
	size_t i, n = 0;
	int r = 0;

	for (i = 0; i < na; i++) {
		const char *name = *(char *const *)(const void *)
				   ((const char *)a + i * stride);

		if (config_set_put(&set, name, i)) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < nb; i++) {
		const char *name = *(char *const *)(const void *)
				   ((const char *)b + i * stride);
		char **nv;

		if (config_set_get(&set, name) != SIZE_MAX)
			continue;
		if (out) {
			nv = config_grow(v, n, sizeof(*v));
			if (nv)
				v = nv;
			dup = nv ? strdup(name) : NULL;
			if (!dup) {
				r = -ENOMEM;
				goto out;
			}
			v[n] = dup;
		}
		n++;
	}
out:
	config_set_free(&set);
	if (r) {
		config_free_strv(v, out ? n : 0);
		return r;
	}
	*count = n;
	if (out)
		*out = v;
	return 0;
}

static int services_diff(const struct config *old, const struct config *new,
			 struct config_diff *d)
{
	struct strset set = { NULL, 0, 0 };
	size_t i, j;

	for (i = 0; i < old->n_services; i++)
		if (config_set_put(&set, old->services[i].name, i))
			goto oom;
	for (j = 0; j < new->n_services; j++) {
		i = config_set_get(&set, new->services[j].name);
		if (i == SIZE_MAX)
			d->n_services_added++;
		else if (!config_service_equal(&old->services[i],
					       &new->services[j]))
			d->n_services_changed++;
	}
	config_set_free(&set);
	d->n_services_removed = old->n_services + d->n_services_added -
				new->n_services;
	return 0;
oom:
	config_set_free(&set);
	return -ENOMEM;
}

int config_diff(const struct config *old, const struct config *new,
		struct config_diff *out)
{
	const struct config_provision *p = &old->provision, *q = &new->provision;
	size_t np = p->enabled ? p->n_users : 0;
	size_t nq = q->enabled ? q->n_users : 0;

	memset(out, 0, sizeof(*out));
	if (services_diff(old, new, out) ||
	    names_missing(old->namespaces, old->n_namespaces, new->namespaces,
			  new->n_namespaces, sizeof(char *),
			  &out->n_namespaces_added, NULL) ||
	    names_missing(new->namespaces, new->n_namespaces, old->namespaces,
			  old->n_namespaces, sizeof(char *),
			  &out->n_namespaces_removed, NULL) ||
	    names_missing(p->users, np, q->users, nq, sizeof(*p->users),
			  &out->n_users_added, &out->users_added) ||
	    names_missing(q->users, nq, p->users, np, sizeof(*p->users),
			  &out->n_users_removed, &out->users_removed)) {
		config_diff_free(out);
		return -ENOMEM;
	}
	return 0;
}

void config_diff_free(struct config_diff *d)
{
	if (!d)
		return;
	config_free_strv(d->users_added, d->n_users_added);
	config_free_strv(d->users_removed, d->n_users_removed);
	memset(d, 0, sizeof(*d));
}

const char *config_fixed_key(const struct config *a, const struct config *b)
{
	const struct prov_pool *p = &a->provision.pool, *q = &b->provision.pool;

	if (!same_str(a->netns_dir, b->netns_dir))
		return "namespaces.dir";
	if (!same_str(a->user, b->user))
		return "user";
	if (!same_str(a->control.path, b->control.path))
		return "control.path";
	if (!same_str(a->control.group, b->control.group))
		return "control.group";
	if (a->control.mode != b->control.mode)
		return "control.mode";
	if (a->provision.enabled != b->provision.enabled)
		return "provision";
	if (!a->provision.enabled)
		return NULL;
	if (a->provision.uid_base != b->provision.uid_base ||
	    p->uid_base != q->uid_base)
		return "provision.uid_base";
	if (p->v4_base.s_addr != q->v4_base.s_addr || p->v4_plen != q->v4_plen)
		return "provision.ipv4_pool";
	if (memcmp(&p->v6_base, &q->v6_base, sizeof(p->v6_base)))
		return "provision.ipv6_pool";
	if (strcmp(p->ns_tmpl, q->ns_tmpl))
		return "provision.namespace";
	if (strcmp(p->host_tmpl, q->host_tmpl))
		return "provision.host_interface";
	if (strcmp(p->peer_tmpl, q->peer_tmpl))
		return "provision.namespace_interface";
	/* the privileged helper writes it, with what it read at start */
	if (!same_str(a->provision.hosts_file, b->provision.hosts_file))
		return "provision.hosts_file";
	if (!same_str(a->provision.domain, b->provision.domain))
		return "provision.domain";
	return NULL;
}
