/* SPDX-License-Identifier: MIT */
/* check.c: checks that need the whole file, and defaults.
 *
 * After the walk: namespace membership of each service, the same
 * (namespace, address) pair served twice (sorted by address, then one
 * linear pass per group of equal addresses), and the defaults that services
 * inherit.  Messages made here carry the position recorded during the walk.
 *
 * Then the checks the engine runs on a loaded config because they need the
 * host: provisioned users' uids (looked up by a function the engine gives,
 * so that this stays pure) and the number of listening sockets against the
 * descriptor limit.
 */
#include "config/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One listen address, for finding clashes. */
struct listen_ref {
	const struct config_sockaddr *a;
	size_t svc, idx;
	enum config_protocol proto;	/* a TCP and a UDP socket may share
					 * an address (DNS) */
};

static int addr_cmp(const struct config_sockaddr *x,
		    const struct config_sockaddr *y)
{
	const struct sockaddr_in *x4 = (const void *)&x->sa;
	const struct sockaddr_in *y4 = (const void *)&y->sa;
	const struct sockaddr_in6 *x6 = (const void *)&x->sa;
	const struct sockaddr_in6 *y6 = (const void *)&y->sa;
	int r;

	if (x->sa.ss_family != y->sa.ss_family)
		return x->sa.ss_family < y->sa.ss_family ? -1 : 1;
	if (x->sa.ss_family == AF_INET) {
		r = memcmp(&x4->sin_addr, &y4->sin_addr, sizeof(x4->sin_addr));
		if (!r)
			r = memcmp(&x4->sin_port, &y4->sin_port, 2);
	} else {
		r = memcmp(&x6->sin6_addr, &y6->sin6_addr,
			   sizeof(x6->sin6_addr));
		if (!r)
			r = memcmp(&x6->sin6_port, &y6->sin6_port, 2);
	}
	return r;
}

static int listen_ref_cmp(const void *pa, const void *pb)
{
	const struct listen_ref *a = pa, *b = pb;
	int r;

	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	if ((r = addr_cmp(a->a, b->a)))
		return r;
	if (a->svc != b->svc)
		return a->svc < b->svc ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Put "services.NAME.listen[i]" (or without [i]) into BUF. */
static void listen_path(const struct config_ctx *c, size_t svc, size_t idx,
			char *buf, size_t len)
{
	const struct config_service *s = &c->cfg->services[svc];

	if (c->meta[svc].listen_scalar)
		snprintf(buf, len, "services.%s.listen", s->name);
	else
		snprintf(buf, len, "services.%s.listen[%zu]", s->name, idx);
}

static void report_clash(struct config_ctx *c, const struct listen_ref *r,
			 const struct listen_ref *p)
{
	char path[SERVICE_NAME_MAX * 4 + 64], there[sizeof(path)];
	struct mark at = { r->a->line, r->a->col };

	listen_path(c, r->svc, r->idx, path, sizeof(path));
	config_path_push(c, path);
	if (p->svc == r->svc) {
		config_error_at(c, at, "%s is already listed at %u:%u",
				r->a->text, p->a->line, p->a->col);
	} else {
		listen_path(c, p->svc, p->idx, there, sizeof(there));
		config_error_at(c, at,
				"%s is already used by service %s (%s at "
				"%u:%u)",
				r->a->text, c->cfg->services[p->svc].name,
				there, p->a->line, p->a->col);
	}
	config_path_pop(c, 0);
}

/* Within REFS[G..E), one address in document order, report every entry
 * that an earlier one already serves in a common namespace: the same
 * service, or either goes everywhere, or their lists share a name.  Linear:
 * keep the first entry of the current service, the first one going
 * everywhere and the first one naming each namespace. */
static void check_group(struct config_ctx *c, const struct listen_ref *refs,
			size_t g, size_t e)
{
	const struct config_service *svcs = c->cfg->services;
	size_t j, k, p, first_svc = g, first_all = SIZE_MAX;
	struct strset names = { NULL, 0, 0 };

	for (j = g; j < e && !c->stop; j++) {
		const struct config_service *s = &svcs[refs[j].svc];

		if (refs[j].svc != refs[first_svc].svc)
			first_svc = j;
		p = first_all;
		if (first_svc < p && first_svc < j)
			p = first_svc;
		if (!s->n_namespaces && g < j)
			p = g;
		for (k = 0; k < s->n_namespaces; k++) {
			size_t q = config_set_get(&names, s->namespaces[k]);

			if (q < p)
				p = q;
		}
		if (p < j)
			report_clash(c, &refs[j], &refs[p]);
		if (first_svc != j)
			continue;
		if (!s->n_namespaces && first_all == SIZE_MAX)
			first_all = j;
		for (k = 0; k < s->n_namespaces; k++) {
			if (config_set_get(&names, s->namespaces[k]) !=
			    SIZE_MAX)
				continue;
			if (config_set_put(&names, s->namespaces[k], j)) {
				config_oom(c);
				break;
			}
		}
	}
	config_set_free(&names);
}

/* Report the same (namespace, address) pair served twice. */
static void check_listen_clashes(struct config_ctx *c)
{
	const struct config *cfg = c->cfg;
	struct listen_ref *refs;
	size_t i, j, n = 0, g;

	for (i = 0; i < cfg->n_services; i++)
		n += cfg->services[i].n_listen;
	if (!n)
		return;
	refs = calloc(n, sizeof(*refs));
	if (!refs) {
		config_oom(c);
		return;
	}
	for (n = 0, i = 0; i < cfg->n_services; i++) {
		for (j = 0; j < cfg->services[i].n_listen; j++) {
			refs[n].a = &cfg->services[i].listen[j];
			refs[n].svc = i;
			refs[n].proto = cfg->services[i].protocol;
			refs[n++].idx = j;
		}
	}
	qsort(refs, n, sizeof(*refs), listen_ref_cmp);
	for (g = 0; g < n && !c->stop; g = i) {
		for (i = g + 1; i < n && refs[g].proto == refs[i].proto &&
			    !addr_cmp(refs[g].a, refs[i].a); i++)
			;
		if (i - g > 1)
			check_group(c, refs, g, i);
	}
	free(refs);
}

/* control.path, or its old name provision.control, or the default; then
 * provision.control mirrors it. */
static void check_control(struct config_ctx *c)
{
	struct config *cfg = c->cfg;
	struct mark at = c->prov_control_at;

	if (c->prov_control && cfg->control.path &&
	    strcmp(c->prov_control, cfg->control.path)) {
		config_path_push(c, "provision.control");
		config_error_at(c, at, "\"%s\" differs from control.path "
				"\"%s\" at %u:%u (provision.control is its "
				"old name: give only control.path)",
				c->prov_control, cfg->control.path,
				c->control_at.line, c->control_at.col);
		config_path_pop(c, 0);
		return;
	}
	if (!cfg->control.path) {
		cfg->control.path = c->prov_control ? c->prov_control :
				    strdup(CONFIG_DEFAULT_CONTROL);
		c->prov_control = NULL;
	}
	if (!cfg->control.path ||
	    (cfg->provision.enabled &&
	     !(cfg->provision.control = strdup(cfg->control.path))))
		config_oom(c);
}

/* Checks and defaults that need the whole file. */
void config_finish(struct config_ctx *c)
{
	struct config *cfg = c->cfg;
	char buf[SERVICE_NAME_MAX * 4 + 64];
	size_t i, j;

	if (!c->all_set)
		cfg->ns_all = !c->names_set;
	if (!cfg->ns_all && !c->names_count) {
		config_path_push(c, "namespaces");
		config_error_at(c, c->ns_at,
				"no namespace to serve: set all: true "
				"or list names");
		config_path_pop(c, 0);
	}
	for (i = 0; i < cfg->n_services && !cfg->ns_all; i++) {
		const struct config_service *s = &cfg->services[i];

		for (j = 0; j < s->n_namespaces; j++) {
			if (config_set_get(&c->ns_names, s->namespaces[j]) !=
			    SIZE_MAX)
				continue;
			snprintf(buf, sizeof(buf),
				 "services.%s.namespaces[%zu]", s->name, j);
			config_path_push(c, buf);
			config_error_at(c, c->meta[i].ns_at[j],
					"namespace '%s' is "
					"not in namespaces.names",
					s->namespaces[j]);
			config_path_pop(c, 0);
		}
	}
	check_listen_clashes(c);

	if (!c->def_connect_ms)
		c->def_connect_ms = CONFIG_DEFAULT_CONNECT_MS;
	if (!c->def_idle_ms)
		c->def_idle_ms = CONFIG_DEFAULT_IDLE_MS;
	if (!c->def_fin_ms)
		c->def_fin_ms = CONFIG_DEFAULT_FIN_MS;
	for (i = 0; i < cfg->n_services; i++) {
		struct config_service *s = &cfg->services[i];

		if (!s->connect_timeout_ms)
			s->connect_timeout_ms = c->def_connect_ms;
		if (!s->idle_timeout_ms)
			s->idle_timeout_ms =
				s->protocol == CONFIG_PROTO_UDP ?
				CONFIG_DEFAULT_UDP_IDLE_MS : c->def_idle_ms;
		if (!s->fin_timeout_ms)
			s->fin_timeout_ms = c->def_fin_ms;
		if (!s->check.interval_ms)
			s->check.interval_ms = CONFIG_DEFAULT_CHECK_INTERVAL_MS;
		/* never longer than the interval, which may be shorter */
		if (!s->check.timeout_ms)
			s->check.timeout_ms =
				s->check.interval_ms <
				CONFIG_DEFAULT_CHECK_TIMEOUT_MS ?
				s->check.interval_ms :
				CONFIG_DEFAULT_CHECK_TIMEOUT_MS;
		if (!s->check.rise)
			s->check.rise = CONFIG_DEFAULT_CHECK_RISE;
		if (!s->check.fall)
			s->check.fall = CONFIG_DEFAULT_CHECK_FALL;
	}
	if (!cfg->retry_max_ms)
		cfg->retry_max_ms = CONFIG_DEFAULT_RETRY_MAX_MS;
	if (!cfg->dns.refresh_ms)
		cfg->dns.refresh_ms = CONFIG_DEFAULT_DNS_REFRESH_MS;
	if (!cfg->netns_dir)
		cfg->netns_dir = strdup(CONFIG_DEFAULT_NETNS_DIR);
	if (!cfg->user)
		cfg->user = strdup(CONFIG_DEFAULT_USER);
	check_control(c);
	cfg->path = strdup(c->name);
	if (!cfg->netns_dir || !cfg->user || !cfg->path)
		config_oom(c);
}

/* ---- checks offered to the engine ------------------------------------ */

int config_check_users(const struct config *cfg,
		       int (*uid_of)(const char *name, uint32_t *uid,
				     void *arg),
		       void *arg, struct config_errors *errs)
{
	const struct config_provision *p = &cfg->provision;
	int bad = 0, r;

	for (size_t i = 0; i < p->n_users; i++) {
		const struct config_prov_user *u = &p->users[i];
		uint32_t uid;

		r = uid_of(u->name, &uid, arg);
		if (r < 0)
			continue;	/* the host's business: not checked */
		if (uid == 0)
			r = config_errs_add(errs, "%s:%u:%u: provision.users"
					    "[%zu]: \"%s\" has uid 0: refused",
					    cfg->path, u->at.line, u->at.col,
					    i, u->name);
		else if (uid < p->uid_base && u->index < 0)
			r = config_errs_add(errs, "%s:%u:%u: provision.users"
					    "[%zu]: \"%s\" has uid %" PRIu32
					    ", below uid_base %" PRIu32
					    " (give it an index, or lower "
					    "uid_base)", cfg->path, u->at.line,
					    u->at.col, i, u->name, uid,
					    p->uid_base);
		else
			continue;
		if (r < 0)
			return -ENOMEM;
		bad++;
	}
	return bad;
}

/* A + B, or SIZE_MAX when it does not fit. */
static size_t add_sat(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t mul_sat(size_t a, size_t b)
{
	return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

size_t config_listener_count(const struct config *cfg, size_t n_namespaces)
{
	size_t total = 0;

	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *s = &cfg->services[i];
		size_t n;

		if (s->n_namespaces)
			n = s->n_namespaces;
		else if (!cfg->ns_all)
			n = cfg->n_namespaces;
		else	/* listed names, plus what all: true finds */
			n = add_sat(cfg->n_namespaces, n_namespaces);
		total = add_sat(total, mul_sat(s->n_listen, n));
	}
	return total;
}

int config_check_listeners(const struct config *cfg, size_t n_namespaces,
			   uint64_t limit, struct config_errors *errs)
{
	size_t n = config_listener_count(cfg, n_namespaces);

	if (n <= limit)
		return 0;
	if (config_errs_add(errs, "%s: %zu listening sockets (listen "
			    "addresses times namespaces) do not fit the "
			    "descriptor limit: %" PRIu64 " left for them",
			    cfg->path, n, limit) < 0)
		return -ENOMEM;
	return 1;
}
