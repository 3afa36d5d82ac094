/* SPDX-License-Identifier: MIT */
/* schema.c: what the file may say: the tables of keys and their handlers.
 *
 * Each table lists {key, node type, handler, offset}; config_parse_fields()
 * (walk.c) finds the entry for a key, checks the node type and calls the
 * handler (h_*), which consumes exactly that node and stores what it finds
 * at the offset in its object (struct config, a service, the provision
 * section, or the parse context for defaults).  Values are parsed by
 * values.c; checks that need the whole file are in check.c.
 */
#include "config/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/* Replace the string at DST with a copy of V. */
static void set_str(struct config_ctx *c, char **dst, const char *v)
{
	char *dup = strdup(v);

	if (!dup) {
		config_oom(c);
		return;
	}
	free(*dst);
	*dst = dup;
}

/* The current scalar if it is not empty; else NULL, reported. */
static const char *nonempty(struct config_ctx *c)
{
	const char *v = config_scalar(c);

	if (v && !*v) {
		config_error_at(c, config_here(c), "must not be empty");
		return NULL;
	}
	return v;
}

static void h_user(struct config_ctx *c, void *obj, size_t off)
{
	char **dst = (char **)((char *)obj + off);
	const char *v = nonempty(c);

	if (!v)
		return;
	if (!strcmp(v, "root") || strspn(v, "0") == strlen(v)) {
		config_error_at(c, config_here(c),
				"must not be root: upstreams would see uid 0");
		return;
	}
	set_str(c, dst, v);
}

static void h_abs_path(struct config_ctx *c, void *obj, size_t off)
{
	char **dst = (char **)((char *)obj + off);
	const char *v = config_scalar(c);

	if (!v)
		return;
	if (v[0] != '/') {
		config_error_at(c, config_here(c), "must be an absolute path");
		return;
	}
	set_str(c, dst, v);
}

static void duration(struct config_ctx *c, void *obj, size_t off,
		     bool zero_ok)
{
	uint64_t *dst = (uint64_t *)(void *)((char *)obj + off);
	const char *v = config_scalar(c), *why;
	char buf[128];

	if (!v)
		return;
	why = config_duration_why(v, dst, zero_ok, buf, sizeof(buf));
	if (why)
		config_error_at(c, config_here(c), "bad duration \"%s\": %s", v,
				why);
}

/* A duration greater than zero. */
static void h_duration(struct config_ctx *c, void *obj, size_t off)
{
	duration(c, obj, off, false);
}

/* A duration, where "0" (or "0s") means none. */
static void h_duration0(struct config_ctx *c, void *obj, size_t off)
{
	duration(c, obj, off, true);
}

static void h_ns_all(struct config_ctx *c, void *obj, size_t off)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char *v = config_scalar(c);
	size_t i;

	if (!v)
		return;
	for (i = 0; i < ARRAY_SIZE(yes); i++) {
		if (!strcasecmp(v, yes[i]) || !strcasecmp(v, no[i])) {
			c->cfg->ns_all = !strcasecmp(v, yes[i]);
			c->all_set = true;
			return;
		}
	}
	config_error_at(c, config_here(c), "expected true or false, not \"%s\"",
			v);
}

/* A list of namespace names being filled in. */
struct ns_list {
	char ***names;
	size_t *n;
	struct mark **at;
	struct strset *set;
	size_t count;		/* items seen, valid or not */
};

static void ns_item(struct config_ctx *c, void *arg)
{
	struct ns_list *l = arg;
	struct mark at = config_here(c), *m;
	const char *v, *why;
	char **names, *dup;
	size_t prev;

	l->count++;
	if (!config_expect(c, N_SCALAR) || !(v = config_scalar(c)))
		return;
	why = config_ns_name_problem(v);
	if (why) {
		config_error_at(c, at, "bad namespace name \"%s\": %s", v, why);
		return;
	}
	prev = config_set_get(l->set, v);
	if (prev != SIZE_MAX) {
		config_error_at(c, at, "\"%s\" is already listed at %u:%u", v,
				(*l->at)[prev].line, (*l->at)[prev].col);
		return;
	}
	names = config_grow(*l->names, *l->n, sizeof(**l->names));
	if (names)
		*l->names = names;
	m = names ? config_grow(*l->at, *l->n, sizeof(**l->at)) : NULL;
	if (m)
		*l->at = m;
	dup = m ? strdup(v) : NULL;
	if (!dup || config_set_put(l->set, dup, *l->n)) {
		free(dup);
		config_oom(c);
		return;
	}
	(*l->names)[*l->n] = dup;
	(*l->at)[(*l->n)++] = at;
}

static void h_ns_names(struct config_ctx *c, void *obj, size_t off)
{
	struct config *cfg = c->cfg;
	struct ns_list l = {
		&cfg->namespaces, &cfg->n_namespaces, &c->names_at,
		&c->ns_names, 0
	};

	c->names_set = true;
	config_seq_each(c, ns_item, &l);
	c->names_count = l.count;
}

/* Any non-empty scalar, kept as a string. */
static void h_string(struct config_ctx *c, void *obj, size_t off)
{
	char **dst = (char **)((char *)obj + off);
	const char *v = nonempty(c);

	if (v)
		set_str(c, dst, v);
}

/* A pool or a template of provision:, set into the pool by netns/pool.c,
 * whose reasons are used as they are; names made from a template are
 * checked further by config_tmpl_problem().  OFF is not an offset here but
 * which one: '4', '6', or a template: 'n', 'h', 'p'. */
static void h_pool(struct config_ctx *c, void *obj, size_t off)
{
	struct config_provision *p = obj;
	const char *v = nonempty(c), *why = NULL;
	char which = (char)off;
	int r;

	if (!v)
		return;
	switch (which) {
	case '4':
		r = prov_pool_set_v4(&p->pool, v);
		break;
	case '6':
		r = prov_pool_set_v6(&p->pool, v);
		break;
	default:
		why = config_tmpl_problem(which, v);
		r = why ? -EINVAL : prov_pool_set_tmpl(&p->pool, which, v);
		break;
	}
	if (r < 0)
		config_error_at(c, config_here(c), "bad value \"%s\": %s", v,
				why ? why : prov_pool_strerror(r, which));
}

static void h_glob(struct config_ctx *c, void *obj, size_t off)
{
	const char *v = config_scalar(c);

	if (!v)
		return;
	if (!*v || strchr(v, '/')) {
		config_error_at(c, config_here(c), "bad glob \"%s\": a "
				"non-empty pattern for names, without '/'", v);
		return;
	}
	h_string(c, obj, off);
}


/* An unsigned integer below LIMIT; 0, or -1 reported at the scalar. */
static int uint_value(struct config_ctx *c, const char *v,
		      unsigned long limit, unsigned long *out)
{
	if (config_parse_uint(v, limit, out) == 0)
		return 0;
	config_error_at(c, config_here(c), "expected a whole number below %lu, "
			"not \"%s\"", limit, v);
	return -1;
}

static void h_uid_base(struct config_ctx *c, void *obj, size_t off)
{
	const char *v = config_scalar(c);
	unsigned long n;

	if (v && uint_value(c, v, 0xffffffffUL, &n) == 0)
		c->cfg->provision.uid_base = c->cfg->provision.pool.uid_base =
			(uint32_t)n;
}

static void prov_user_add(struct config_ctx *c, const char *name, long index,
			  struct mark at)
{
	struct config_provision *p = &c->cfg->provision;
	struct config_prov_user *u;
	const char *why = config_ns_name_problem(name);
	size_t prev = config_set_get(&c->prov_users, name);

	if (why || !*name) {
		config_error_at(c, at, "bad user name \"%s\"", name);
		return;
	}
	if (!strcmp(name, "root")) {
		config_error_at(c, at, "\"root\" is refused: a "
				"provisioned namespace is for a user with a "
				"uid of at least uid_base");
		return;
	}
	if (prev != SIZE_MAX) {
		config_error_at(c, at, "\"%s\" is already listed at %u:%u",
				name, p->users[prev].at.line,
				p->users[prev].at.col);
		return;
	}
	u = config_grow(p->users, p->n_users, sizeof(*u));
	if (!u) {
		config_oom(c);
		return;
	}
	p->users = u;
	u = &p->users[p->n_users];
	u->name = strdup(name);
	if (!u->name || config_set_put(&c->prov_users, u->name, p->n_users)) {
		free(u->name);
		config_oom(c);
		return;
	}
	u->index = index;
	u->at.line = at.line;
	u->at.col = at.col;
	p->n_users++;
}

/* A user entry: "alice" or { name: alice, index: 9 }. */
struct user_entry {
	char *name;
	long index;
};

static void h_entry_name(struct config_ctx *c, void *obj, size_t off)
{
	h_string(c, obj, offsetof(struct user_entry, name));
}

static void h_entry_index(struct config_ctx *c, void *obj, size_t off)
{
	struct user_entry *e = obj;
	const char *v = config_scalar(c);
	unsigned long n;

	if (v && uint_value(c, v, 65536, &n) == 0)
		e->index = (long)n;
}

static const struct field user_fields[] = {
	{ "name", N_SCALAR, h_entry_name, 0, true },
	{ "index", N_SCALAR, h_entry_index, 0, false },
};

static void user_item(struct config_ctx *c, void *arg)
{
	struct mark at = config_here(c);
	struct user_entry e = { NULL, -1 };
	const char *v;

	if (config_node_kind(c) == K_MAP) {
		config_parse_fields(c, user_fields, ARRAY_SIZE(user_fields), &e,
				    at);
		if (e.name)
			prov_user_add(c, e.name, e.index, at);
		free(e.name);
		return;
	}
	if (!config_expect(c, N_SCALAR) || !(v = config_scalar(c)))
		return;
	prov_user_add(c, v, -1, at);
}

static void h_prov_users(struct config_ctx *c, void *obj, size_t off)
{
	config_seq_each(c, user_item, NULL);
}

/* A limit of struct config_limits at OFF: a whole number below MAX. */
static bool limit_value(struct config_ctx *c, void *obj, size_t off,
			unsigned long max)
{
	unsigned *dst = (unsigned *)(void *)((char *)obj + off);
	const char *v = config_scalar(c);
	unsigned long n;

	if (!v || uint_value(c, v, max, &n))
		return false;
	*dst = (unsigned)n;
	return true;
}

static void h_limit(struct config_ctx *c, void *obj, size_t off)
{
	limit_value(c, obj, off, CONFIG_LIMIT_MAX);
}

static void h_limit_rate(struct config_ctx *c, void *obj, size_t off)
{
	if (limit_value(c, obj, off, CONFIG_LIMIT_MAX))
		c->rate_set = true;
}

static void h_limit_burst(struct config_ctx *c, void *obj, size_t off)
{
	struct mark at = config_here(c);

	if (limit_value(c, obj, off, 2UL * CONFIG_LIMIT_MAX)) {
		c->burst_set = true;
		c->burst_at = at;
	}
}

static const struct field limits_fields[] = {
	{ "connections_per_namespace", N_SCALAR, h_limit,
	  offsetof(struct config_limits, conns), false },
	{ "connections_per_second", N_SCALAR, h_limit_rate,
	  offsetof(struct config_limits, rate), false },
	{ "burst", N_SCALAR, h_limit_burst,
	  offsetof(struct config_limits, burst), false },
};

/* limits: per namespace.  burst defaults to twice the rate; it must be at
 * least 1 with a rate, and is refused without one (it would do nothing). */
static void h_limits(struct config_ctx *c, void *obj, size_t off)
{
	struct config_limits *l = &c->cfg->limits;
	size_t old;

	config_parse_fields(c, limits_fields, ARRAY_SIZE(limits_fields), l,
			    config_here(c));
	if (!c->burst_set) {
		l->burst = 2 * l->rate;
		return;
	}
	old = config_path_push(c, "burst");
	if (l->rate && !l->burst)
		config_error_at(c, c->burst_at, "must be at least 1 when "
				"connections_per_second is not 0");
	else if (!l->rate && l->burst)
		config_error_at(c, c->burst_at, "%u does nothing when "
				"connections_per_second is 0 (no rate limit)",
				l->burst);
	config_path_pop(c, old);
}

static const struct field svc_limits_fields[] = {
	{ "connections_per_namespace", N_SCALAR, h_limit,
	  offsetof(struct config_limits, conns), false },
};

static void h_svc_limits(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;

	config_parse_fields(c, svc_limits_fields,
			    ARRAY_SIZE(svc_limits_fields), &s->limits,
			    config_here(c));
}

/* An absolute path that fits a unix socket address; 0, or -1 reported. */
static int sock_path(struct config_ctx *c, const char *v)
{
	if (v[0] != '/') {
		config_error_at(c, config_here(c), "must be an absolute path");
		return -1;
	}
	if (strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		config_error_at(c, config_here(c), "longer than %zu bytes: "
				"too long for a unix socket",
				sizeof(((struct sockaddr_un *)0)->sun_path) -
				1);
		return -1;
	}
	return 0;
}

static void h_ctl_path(struct config_ctx *c, void *obj, size_t off)
{
	struct config_control *ctl = obj;
	struct mark at = config_here(c);
	const char *v = config_scalar(c);

	if (!v || sock_path(c, v))
		return;
	set_str(c, &ctl->path, v);
	c->control_at = at;
}

/* provision.control: the old name of control.path. */
static void h_prov_control(struct config_ctx *c, void *obj, size_t off)
{
	struct mark at = config_here(c);
	const char *v = config_scalar(c);

	if (!v || sock_path(c, v))
		return;
	set_str(c, &c->prov_control, v);
	c->prov_control_at = at;
}

static void h_ctl_group(struct config_ctx *c, void *obj, size_t off)
{
	struct config_control *ctl = obj;
	const char *v = config_scalar(c), *why;

	if (!v)
		return;
	why = config_group_problem(v);
	if (why)
		config_error_at(c, config_here(c), "bad group name \"%s\": %s",
				v, why);
	else
		set_str(c, &ctl->group, v);
}

static void h_ctl_mode(struct config_ctx *c, void *obj, size_t off)
{
	struct config_control *ctl = obj;
	const char *v = config_scalar(c), *why;

	if (!v)
		return;
	why = config_mode_why(v, &ctl->mode);
	if (why)
		config_error_at(c, config_here(c), "bad mode \"%s\": %s", v,
				why);
}

static const struct field control_fields[] = {
	{ "path", N_SCALAR, h_ctl_path, 0, false },
	{ "group", N_SCALAR, h_ctl_group, 0, false },
	{ "mode", N_SCALAR, h_ctl_mode, 0, false },
};

static void h_control(struct config_ctx *c, void *obj, size_t off)
{
	config_parse_fields(c, control_fields, ARRAY_SIZE(control_fields),
			    &c->cfg->control, config_here(c));
}

static void h_metrics_listen(struct config_ctx *c, void *obj, size_t off)
{
	struct config_metrics *m = obj;
	const char *text = config_scalar(c), *why;

	if (!text)
		return;
	if (config_parse_sockaddr(text, false, &m->listen, &why)) {
		config_error_at(c, config_here(c), "%s", why);
		memset(&m->listen, 0, sizeof(m->listen));
		return;
	}
	m->listen.line = config_here(c).line;
	m->listen.col = config_here(c).col;
	m->enabled = true;
}

static const struct field metrics_fields[] = {
	{ "listen", N_SCALAR, h_metrics_listen, 0, true },
};

static void h_metrics(struct config_ctx *c, void *obj, size_t off)
{
	config_parse_fields(c, metrics_fields, ARRAY_SIZE(metrics_fields),
			    &c->cfg->metrics, config_here(c));
}

static void h_removed(struct config_ctx *c, void *obj, size_t off)
{
	struct config_provision *p = obj;
	const char *v = config_scalar(c);

	if (!v)
		return;
	if (!strcmp(v, "keep"))
		p->removed = CONFIG_REMOVED_KEEP;
	else if (!strcmp(v, "deprovision"))
		p->removed = CONFIG_REMOVED_DEPROVISION;
	else
		config_error_at(c, config_here(c), "expected keep or "
				"deprovision, not \"%s\"", v);
}

static const struct field prov_fields[] = {
#define PF(k, f, fn) { k, N_SCALAR, fn, \
		       offsetof(struct config_provision, f), false }
	{ "users", N_SEQ, h_prov_users, 0, false },
	{ "uid_base", N_SCALAR, h_uid_base, 0, false },
	{ "ipv4_pool", N_SCALAR, h_pool, '4', false },
	{ "ipv6_pool", N_SCALAR, h_pool, '6', false },
	{ "namespace", N_SCALAR, h_pool, 'n', false },
	{ "host_interface", N_SCALAR, h_pool, 'h', false },
	{ "namespace_interface", N_SCALAR, h_pool, 'p', false },
	{ "control", N_SCALAR, h_prov_control, 0, false },
	PF("hosts_file", hosts_file, h_abs_path),
	PF("domain", domain, h_string),
	{ "removed", N_SCALAR, h_removed, 0, false },
#undef PF
};

static void h_provision(struct config_ctx *c, void *obj, size_t off)
{
	c->cfg->provision.enabled = true;
	config_parse_fields(c, prov_fields, ARRAY_SIZE(prov_fields),
			    &c->cfg->provision, config_here(c));
}

static const struct field ns_fields[] = {
	{ "dir", N_SCALAR, h_abs_path, offsetof(struct config, netns_dir),
	  false },
	{ "all", N_SCALAR, h_ns_all, 0, false },
	{ "names", N_SEQ, h_ns_names, 0, false },
	{ "match", N_SCALAR, h_glob, offsetof(struct config, ns_match),
	  false },
};

static void h_namespaces(struct config_ctx *c, void *obj, size_t off)
{
	c->ns_at = config_here(c);
	config_parse_fields(c, ns_fields, ARRAY_SIZE(ns_fields), c->cfg,
			    config_here(c));
}

static const struct field defaults_fields[] = {
	{ "connect_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_ctx, def_connect_ms), false },
	{ "idle_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_ctx, def_idle_ms), false },
	{ "fin_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_ctx, def_fin_ms), false },
};

static void h_defaults(struct config_ctx *c, void *obj, size_t off)
{
	config_parse_fields(c, defaults_fields, ARRAY_SIZE(defaults_fields), c,
			    config_here(c));
}

/* A numeric address (no unix socket) appended to *ARR of *N, with where
 * it was written. */
static void sockaddr_item(struct config_ctx *c, struct config_sockaddr **arr,
			  size_t *n)
{
	struct config_sockaddr sa, *v;
	const char *text, *why;

	if (!config_expect(c, N_SCALAR) || !(text = config_scalar(c)))
		return;
	if (config_parse_sockaddr(text, false, &sa, &why)) {
		config_error_at(c, config_here(c), "%s", why);
		return;
	}
	sa.line = config_here(c).line;
	sa.col = config_here(c).col;
	v = config_grow(*arr, *n, sizeof(*v));
	if (!v) {
		config_oom(c);
		return;
	}
	*arr = v;
	(*arr)[(*n)++] = sa;
}

static void listen_item(struct config_ctx *c, void *arg)
{
	struct config_service *s = arg;

	sockaddr_item(c, &s->listen, &s->n_listen);
}

static void h_listen(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct mark at = config_here(c);

	if (c->ev.type == YAML_SCALAR_EVENT) {
		c->meta[s - c->cfg->services].listen_scalar = true;
		listen_item(c, s);
	} else if (!config_seq_each(c, listen_item, s)) {
		config_error_at(c, at, "at least one address is required");
	}
}

/* One server of upstream: an address not listed before in the service. */
static void upstream_item(struct config_ctx *c, void *arg)
{
	struct config_service *s = arg;
	struct config_sockaddr sa;
	struct mark at = config_here(c);
	const char *text, *why;

	if (!config_expect(c, N_SCALAR) || !(text = config_scalar(c)))
		return;
	/* an address, else a host name the engine resolves */
	if (config_parse_sockaddr(text, true, &sa, &why) &&
	    (strncmp(why, "not an IP address", 17) ||
	     config_parse_hostport(text, &sa, &why))) {
		config_error_at(c, at, "%s", why);
		return;
	}
	sa.line = at.line;
	sa.col = at.col;
	for (size_t i = 0; i < s->n_upstreams; i++) {
		if (!strcmp(s->upstreams[i].text, sa.text)) {
			config_error_at(c, at, "%s is already listed at %u:%u",
					sa.text, s->upstreams[i].line,
					s->upstreams[i].col);
			return;
		}
	}
	if (s->n_upstreams == CONFIG_MAX_UPSTREAMS) {
		config_error_at(c, at, "more than %d servers", 
				CONFIG_MAX_UPSTREAMS);
		return;
	}
	s->upstreams[s->n_upstreams++] = sa;
	if (s->n_upstreams == 1)
		s->upstream = sa;
}

/* upstream: one server, or a list of them. */
static void h_upstream(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct mark at = config_here(c);

	if (c->ev.type == YAML_SCALAR_EVENT)
		upstream_item(c, s);
	else if (!config_seq_each(c, upstream_item, s))
		config_error_at(c, at, "at least one server is required");
}

/* One word of TABLE (N names); its index, or -1 reported. */
static int word(struct config_ctx *c, const char *const *table, size_t n,
		const char *expected)
{
	const char *v = config_scalar(c);

	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v, table[i]))
			return (int)i;
	config_error_at(c, config_here(c), "expected %s, not \"%s\"",
			expected, v);
	return -1;
}

static const char *const balance_names[] = {
	[CONFIG_BALANCE_FIRST] = "first",
	[CONFIG_BALANCE_ROUNDROBIN] = "roundrobin",
	[CONFIG_BALANCE_LEASTCONN] = "leastconn",
};

static const char *const protocol_names[] = {
	[CONFIG_PROTO_TCP] = "tcp",
	[CONFIG_PROTO_UDP] = "udp",
};

const char *config_protocol_name(enum config_protocol p)
{
	return (size_t)p < ARRAY_SIZE(protocol_names) ? protocol_names[p] :
	       "?";
}

static void h_protocol(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct mark at = config_here(c);
	int i = word(c, protocol_names, ARRAY_SIZE(protocol_names),
		     "tcp or udp");

	if (i < 0)
		return;
	s->protocol = (enum config_protocol)i;
	c->meta[s - c->cfg->services].protocol_at = at;
}

static const char *const proxy_names[] = {
	[CONFIG_PROXY_OFF] = "off",
	[CONFIG_PROXY_V1] = "v1",
	[CONFIG_PROXY_V2] = "v2",
};

const char *config_proxy_name(enum config_proxy_protocol p)
{
	return (size_t)p < ARRAY_SIZE(proxy_names) ? proxy_names[p] : "?";
}

static void h_proxy(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct mark at = config_here(c);
	int i = word(c, proxy_names, ARRAY_SIZE(proxy_names),
		     "v1, v2 or off");

	if (i < 0)
		return;
	s->proxy_protocol = (enum config_proxy_protocol)i;
	c->meta[s - c->cfg->services].proxy_at = at;
}

static const char *const source_names[] = {
	[CONFIG_SOURCE_DEFAULT] = "default",
	[CONFIG_SOURCE_NAMESPACE] = "namespace",
};

const char *config_source_name(enum config_source v)
{
	return (size_t)v < ARRAY_SIZE(source_names) ? source_names[v] : "?";
}

static void h_source(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct mark at = config_here(c);
	int i = word(c, source_names, ARRAY_SIZE(source_names),
		     "namespace or default");

	if (i < 0)
		return;
	s->source = (enum config_source)i;
	c->meta[s - c->cfg->services].source_at = at;
}

static const char *const check_names[] = {
	[CONFIG_CHECK_NONE] = "none",
	[CONFIG_CHECK_TCP] = "tcp",
	[CONFIG_CHECK_MYSQL] = "mysql",
	[CONFIG_CHECK_SMTP] = "smtp",
	[CONFIG_CHECK_IMAP] = "imap",
};

const char *config_balance_name(enum config_balance b)
{
	return (size_t)b < ARRAY_SIZE(balance_names) ? balance_names[b] : "?";
}

const char *config_check_name(enum config_check_proto p)
{
	return (size_t)p < ARRAY_SIZE(check_names) ? check_names[p] : "?";
}

static void h_balance(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	int i = word(c, balance_names, ARRAY_SIZE(balance_names),
		     "first, roundrobin or leastconn");

	if (i >= 0)
		s->balance = (enum config_balance)i;
}

/* check: as written, with where the timeout was, for the check against
 * the interval once both are known. */
struct check_entry {
	struct config_check ck;
	struct mark timeout_at;
};

static void h_check_proto(struct config_ctx *c, void *obj, size_t off)
{
	struct check_entry *e = obj;
	int i = word(c, check_names, ARRAY_SIZE(check_names),
		     "tcp, mysql, smtp, imap or none");

	if (i >= 0)
		e->ck.protocol = (enum config_check_proto)i;
}

static void h_check_timeout(struct config_ctx *c, void *obj, size_t off)
{
	struct check_entry *e = obj;

	e->timeout_at = config_here(c);
	duration(c, obj, off, false);
}

static void h_check_count(struct config_ctx *c, void *obj, size_t off)
{
	unsigned *dst = (unsigned *)(void *)((char *)obj + off);
	const char *v = config_scalar(c);
	unsigned long n;

	if (!v)
		return;
	if (config_parse_uint(v, CONFIG_CHECK_COUNT_MAX + 1, &n) || !n) {
		config_error_at(c, config_here(c), "expected a whole number "
				"from 1 to %d, not \"%s\"",
				CONFIG_CHECK_COUNT_MAX, v);
		return;
	}
	*dst = (unsigned)n;
}

static const struct field check_fields[] = {
#define CF(k, f, fn) { k, N_SCALAR, fn, \
		       offsetof(struct check_entry, ck.f), false }
	CF("protocol", protocol, h_check_proto),
	CF("interval", interval_ms, h_duration),
	CF("timeout", timeout_ms, h_check_timeout),
	CF("rise", rise, h_check_count),
	CF("fall", fall, h_check_count),
#undef CF
};

/* check: a mapping; without protocol: tcp.  Defaults for what is left out
 * are filled in by config_finish() (a service without check: has them
 * too: the interval is how long a down server rests). */
static void h_check(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct check_entry e;
	uint64_t interval;
	size_t old;

	c->meta[s - c->cfg->services].check_at = config_here(c);
	memset(&e, 0, sizeof(e));
	e.ck.protocol = CONFIG_CHECK_TCP;
	config_parse_fields(c, check_fields, ARRAY_SIZE(check_fields), &e,
			    config_here(c));
	interval = e.ck.interval_ms ? e.ck.interval_ms :
		   CONFIG_DEFAULT_CHECK_INTERVAL_MS;
	if (e.ck.timeout_ms > interval) {
		old = config_path_push(c, "timeout");
		config_error_at(c, e.timeout_at, "longer than the interval "
				"(%llu ms): a check must end before the next "
				"one starts", (unsigned long long)interval);
		config_path_pop(c, old);
	}
	s->check = e.ck;
}

static void h_svc_namespaces(struct config_ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct strset set = { NULL, 0, 0 };
	struct ns_list l = {
		&s->namespaces, &s->n_namespaces,
		&c->meta[s - c->cfg->services].ns_at, &set, 0
	};
	struct mark at = config_here(c);

	config_seq_each(c, ns_item, &l);
	config_set_free(&set);
	if (!l.count)
		config_error_at(c, at,
				"at least one namespace is required "
				"(leave the key out for all of them)");
}

static const struct field service_fields[] = {
	{ "protocol", N_SCALAR, h_protocol, 0, false },
	{ "listen", N_SEQ_OR_SCALAR, h_listen, 0, true },
	{ "upstream", N_SEQ_OR_SCALAR, h_upstream, 0, true },
	{ "balance", N_SCALAR, h_balance, 0, false },
	{ "proxy_protocol", N_SCALAR, h_proxy, 0, false },
	{ "source", N_SCALAR, h_source, 0, false },
	{ "check", N_MAP, h_check, 0, false },
	{ "connect_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_service, connect_timeout_ms), false },
	{ "idle_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_service, idle_timeout_ms), false },
	{ "fin_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_service, fin_timeout_ms), false },
	{ "namespaces", N_SEQ, h_svc_namespaces, 0, false },
	{ "limits", N_MAP, h_svc_limits, 0, false },
};

/* What a datagram service cannot have: a PROXY header (a stream's
 * preamble) and an active check (none of them speaks UDP: a flow's ICMP
 * errors are its passive check). */
static void udp_rules(struct config_ctx *c, const struct config_service *s)
{
	const struct svc_meta *m = &c->meta[s - c->cfg->services];
	size_t o;

	/* a reply must come from the address the client sent to: a socket
	 * bound to every address would answer from the route's choice */
	for (size_t i = 0; i < s->n_listen; i++) {
		const struct config_sockaddr *a = &s->listen[i];
		const struct sockaddr_in *in = (const void *)&a->sa;
		const struct sockaddr_in6 *in6 = (const void *)&a->sa;
		struct mark at = { a->line, a->col };

		if ((a->sa.ss_family == AF_INET &&
		     in->sin_addr.s_addr == htonl(INADDR_ANY)) ||
		    (a->sa.ss_family == AF_INET6 &&
		     IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))) {
			o = config_path_push(c, "listen");
			config_error_at(c, at, "%s: a udp service listens on "
					"one address, not on all of them (its "
					"answers must come from the address "
					"asked)", a->text);
			config_path_pop(c, o);
		}
	}

	if (s->proxy_protocol != CONFIG_PROXY_OFF) {
		o = config_path_push(c, "proxy_protocol");
		config_error_at(c, m->proxy_at, "%s is for TCP services: "
				"a udp service sends its datagrams as they "
				"are (say off, or leave it out)",
				config_proxy_name(s->proxy_protocol));
		config_path_pop(c, o);
	}
	if (s->check.protocol != CONFIG_CHECK_NONE) {
		o = config_path_push(c, "check");
		config_error_at(c, m->check_at, "%s checks are for TCP "
				"services: a udp service has no active check "
				"(a server that answers with ICMP errors ends "
				"its flows; say protocol: none, or leave "
				"check out)",
				config_check_name(s->check.protocol));
		config_path_pop(c, o);
	}
}

static void service_key(struct config_ctx *c, const char *name, struct mark at,
			void *arg)
{
	struct config *cfg = c->cfg;
	struct config_service *s;
	struct svc_meta *m;
	size_t old;

	c->n_service_keys++;
	if (!config_valid_service_name(name))
		config_error_at(c, at,
				"bad service name \"%s\": use 1 to %d letters, "
				"digits, '_', '.' or '-'",
				name, SERVICE_NAME_MAX);
	old = config_path_push(c, name);
	if (config_set_get(&c->svc_names, name) != SIZE_MAX) {
		config_error_at(c, at, "duplicate key");
		config_skip_node(c);
		goto out;
	}
	if (!config_expect(c, N_MAP))
		goto out;
	s = config_grow(cfg->services, cfg->n_services, sizeof(*s));
	if (s)
		cfg->services = s;
	m = s ? config_grow(c->meta, cfg->n_services, sizeof(*m)) : NULL;
	if (m)
		c->meta = m;
	s = m ? &cfg->services[cfg->n_services] : NULL;
	if (s) {
		memset(s, 0, sizeof(*s));
		memset(&c->meta[cfg->n_services], 0, sizeof(*m));
		s->name = strdup(name);
	}
	if (!s || !s->name ||
	    config_set_put(&c->svc_names, s->name, cfg->n_services)) {
		if (s)
			free(s->name);
		config_oom(c);
		goto out;
	}
	s->line = at.line;
	s->col = at.col;
	cfg->n_services++;
	config_parse_fields(c, service_fields, ARRAY_SIZE(service_fields), s,
			    at);
	/* a unix socket has no address to choose */
	if (s->source == CONFIG_SOURCE_NAMESPACE) {
		size_t o2 = config_path_push(c, "source");

		for (size_t j = 0; j < s->n_upstreams; j++)
			if (s->upstreams[j].sa.ss_family == AF_UNIX)
				config_error_at(c,
						c->meta[s - cfg->services].source_at,
						"namespace is for TCP upstreams "
						"only: %s is a unix socket",
						s->upstreams[j].text);
		config_path_pop(c, o2);
	}
	if (s->protocol == CONFIG_PROTO_UDP)
		udp_rules(c, s);
out:
	config_path_pop(c, old);
}

static void h_services(struct config_ctx *c, void *obj, size_t off)
{
	struct mark at = config_here(c);

	config_map_each(c, service_key, NULL);
	if (!c->stop && !c->n_service_keys)
		config_error_at(c, at, "at least one service is required");
}

static void dns_server_item(struct config_ctx *c, void *arg)
{
	struct config_dns *d = arg;

	sockaddr_item(c, &d->servers, &d->n_servers);
}

static void h_dns_servers(struct config_ctx *c, void *obj, size_t off)
{
	struct mark at = config_here(c);

	if (!config_seq_each(c, dns_server_item, obj))
		config_error_at(c, at, "at least one server is required "
				"(leave the key out for /etc/resolv.conf's)");
}

static const struct field dns_fields[] = {
	{ "servers", N_SEQ, h_dns_servers, 0, false },
	{ "refresh", N_SCALAR, h_duration,
	  offsetof(struct config_dns, refresh_ms), false },
};

static void h_dns(struct config_ctx *c, void *obj, size_t off)
{
	config_parse_fields(c, dns_fields, ARRAY_SIZE(dns_fields),
			    &c->cfg->dns, config_here(c));
}

static const struct field top_fields[] = {
	{ "dns", N_MAP, h_dns, 0, false },
	{ "user", N_SCALAR, h_user, offsetof(struct config, user), false },
	{ "bind_retry_max", N_SCALAR, h_duration,
	  offsetof(struct config, retry_max_ms), false },
	{ "namespaces", N_MAP, h_namespaces, 0, false },
	{ "defaults", N_MAP, h_defaults, 0, false },
	{ "services", N_MAP, h_services, 0, true },
	{ "provision", N_MAP, h_provision, 0, false },
	{ "limits", N_MAP, h_limits, 0, false },
	{ "shutdown_grace", N_SCALAR, h_duration0,
	  offsetof(struct config, shutdown_grace_ms), false },
	{ "control", N_MAP, h_control, 0, false },
	{ "metrics", N_MAP, h_metrics, 0, false },
};

/* STREAM-START DOCUMENT-START mapping DOCUMENT-END STREAM-END */
void config_parse_document(struct config_ctx *c)
{
	static const struct mark top = { 1, 1 };

	if (config_next(c) || config_next(c))
		return;
	if (c->ev.type == YAML_STREAM_END_EVENT) {
		config_error_at(c, top, "expected a mapping at the top level");
		return;
	}
	if (config_next(c))
		return;
	if (c->ev.type == YAML_MAPPING_START_EVENT) {
		config_node_kind(c);
		config_parse_fields(c, top_fields, ARRAY_SIZE(top_fields),
				    c->cfg, top);
	} else {
		config_error_at(c, top, "expected a mapping at the top level");
		config_skip_node(c);
	}
	if (config_next(c) || config_next(c)) /* DOCUMENT-END, then the next */
		return;
	if (c->ev.type == YAML_DOCUMENT_START_EVENT) {
		config_error_at(c, config_here(c),
				"only one document is allowed");
		c->stop = true;
	}
}
