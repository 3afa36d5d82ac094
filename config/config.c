/* SPDX-License-Identifier: MIT */
/* config.c: parse and validate the nsrelay YAML service map.
 *
 * How it works: libyaml's event parser feeds a small recursive-descent
 * walker whose depth is bounded by the schema (top -> services -> service ->
 * listen list), never by the input.  Each mapping is described by a table of
 * {key, node type, handler, offset}; a handler consumes exactly one node and
 * leaves the current event on that node's last event.  Anything the schema
 * does not expect (unknown keys, wrong node types) is reported and skipped
 * iteratively by counting depth.  Checks that need the whole file (defaults
 * inheritance, namespace membership, listen address clashes) run after the
 * walk.  Messages are collected in the parser context with their position,
 * sorted into file order and only then handed to the caller.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#define SCALAR_MAX		4096		/* bytes in one scalar */
#define MAX_ERRORS		100		/* messages per parse */
#define MAX_FILE_SIZE		(4u << 20)	/* 4 MiB */
#define SERVICE_NAME_MAX	64
#define NS_NAME_MAX		255
#define PATH_SIZE		(4 * (SCALAR_MAX + 32))	/* a.b.c[n] */
#define SKIP_DEPTH_MAX		64	/* libyaml slows down quadratically */

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define PRINTF(f, a)		__attribute__((format(printf, f, a)))

struct mark {
	unsigned line, col;	/* 1-based */
};

struct msg {
	struct mark at;
	char *text;
};

/* A string -> index hash set; keys are borrowed, never freed here. */
struct strset {
	struct strset_slot {
		const char *key;
		size_t idx;
	} *slot;
	size_t cap, n;		/* cap is 0 or a power of two */
};

/* What the walk learns about a service beyond struct config_service. */
struct svc_meta {
	bool listen_scalar;	/* listen: was one scalar, not a list */
	struct mark *ns_at;	/* where each namespaces[] entry was */
};

struct ctx {
	yaml_parser_t parser;
	yaml_event_t ev;	/* current event, valid if have_ev */
	bool have_ev;
	bool stop;		/* syntax error, too many errors or ENOMEM */
	bool too_many;
	bool oom;
	char *oom_text;		/* reserved "NAME: out of memory" */
	const char *name;
	const char *buf;
	size_t len;

	struct config *cfg;
	struct svc_meta *meta;		/* parallel to cfg->services */
	struct strset svc_names;	/* cfg->services[].name */
	size_t n_service_keys;		/* entries under services: */
	struct mark *names_at;		/* parallel to cfg->namespaces */
	struct strset ns_names;		/* cfg->namespaces[] */
	size_t names_count;		/* entries under names:, valid or not */
	bool all_set, names_set;
	struct mark ns_at;		/* the namespaces: mapping */
	uint64_t def_connect_ms, def_idle_ms, def_fin_ms;
	struct strset prov_users;	/* provision.users[].name */

	struct msg *msgs;
	size_t n_msgs;
	char path[PATH_SIZE];	/* key path of the node being looked at */
	size_t path_len;
};

/* ---- small helpers ------------------------------------------------- */

PRINTF(1, 0)
static char *vfmt(const char *fmt, va_list ap)
{
	va_list aq;
	char *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

PRINTF(1, 2)
static char *fmt_str(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	return s;
}

/* Room for N + 1 elements of SIZE in ARR, which holds N; capacity is
 * implied by N (4, 8, 16, ...).  Returns the array or NULL. */
static void *grow(void *arr, size_t n, size_t size)
{
	size_t cap;

	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return arr;
	cap = n ? 2 * n : 4;
	if (cap > SIZE_MAX / size)
		return NULL;
	return realloc(arr, cap * size);
}

static void free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static bool in_strv(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* ---- string set ------------------------------------------------------ */

static size_t hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

/* Index stored for KEY, or SIZE_MAX. */
static size_t set_get(const struct strset *set, const char *key)
{
	size_t i;

	if (!set->cap)
		return SIZE_MAX;
	for (i = hash_str(key) & (set->cap - 1); set->slot[i].key;
	     i = (i + 1) & (set->cap - 1))
		if (!strcmp(set->slot[i].key, key))
			return set->slot[i].idx;
	return SIZE_MAX;
}

static void set_insert(struct strset *set, const char *key, size_t idx)
{
	size_t i;

	for (i = hash_str(key) & (set->cap - 1); set->slot[i].key;
	     i = (i + 1) & (set->cap - 1))
		;
	set->slot[i].key = key;
	set->slot[i].idx = idx;
	set->n++;
}

/* Add KEY (absent) -> IDX.  0, or -1 when out of memory. */
static int set_put(struct strset *set, const char *key, size_t idx)
{
	struct strset old = *set;
	size_t i;

	if (2 * (set->n + 1) > set->cap) {
		size_t cap = set->cap ? 2 * set->cap : 16;

		set->slot = calloc(cap, sizeof(*set->slot));
		if (!set->slot) {
			*set = old;
			return -1;
		}
		set->cap = cap;
		set->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.slot[i].key)
				set_insert(set, old.slot[i].key,
					   old.slot[i].idx);
		free(old.slot);
	}
	set_insert(set, key, idx);
	return 0;
}

static void set_free(struct strset *set)
{
	free(set->slot);
	set->slot = NULL;
	set->cap = set->n = 0;
}

/* ---- messages and key paths ---------------------------------------- */

static struct mark ymark(yaml_mark_t m)
{
	struct mark at = { (unsigned)m.line + 1, (unsigned)m.column + 1 };

	return at;
}

static struct mark here(const struct ctx *c)
{
	return ymark(c->ev.start_mark);
}

static void add_msg(struct ctx *c, struct mark at, char *text)
{
	struct msg *m;

	if (!text) {
		c->oom = c->stop = true;
		return;
	}
	m = grow(c->msgs, c->n_msgs, sizeof(*m));
	if (!m) {
		free(text);
		c->oom = c->stop = true;
		return;
	}
	c->msgs = m;
	c->msgs[c->n_msgs].at = at;
	c->msgs[c->n_msgs++].text = text;
}

/* Report "NAME:LINE:COL: PATH: message" (no "PATH: " at the top). */
PRINTF(3, 4)
static void error_at(struct ctx *c, struct mark at, const char *fmt, ...)
{
	va_list ap;
	char *body;

	if (c->stop)
		return;
	if (c->n_msgs >= MAX_ERRORS - 1) {
		c->too_many = c->stop = true;
		return;
	}
	va_start(ap, fmt);
	body = vfmt(fmt, ap);
	va_end(ap);
	if (!body) {
		c->oom = c->stop = true;
		return;
	}
	if (c->path_len)
		add_msg(c, at, fmt_str("%s:%u:%u: %s: %s", c->name, at.line,
				       at.col, c->path, body));
	else
		add_msg(c, at, fmt_str("%s:%u:%u: %s", c->name, at.line,
				       at.col, body));
	free(body);
}

static void oom(struct ctx *c)
{
	c->oom = c->stop = true;	/* flush_msgs() says so */
}

PRINTF(2, 3)
static int errs_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;
	char **v;
	char *s;

	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	v = s ? realloc(errs->msg, (errs->n + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(s);
		return -1;
	}
	errs->msg = v;
	errs->msg[errs->n++] = s;
	return 0;
}

/* Hand the collected messages to ERRS in file order (stable sort), then
 * "out of memory" or "too many errors" if parsing stopped for that.  The
 * slot for one message and the "out of memory" text were reserved by
 * config_parse_buffer() before it started, so something is always said. */
static void flush_msgs(struct ctx *c, struct config_errors *errs)
{
	size_t i, j, n = c->n_msgs;
	char **v;

	for (i = 1; i < n; i++) {
		struct msg m = c->msgs[i];

		for (j = i; j > 0 && (c->msgs[j - 1].at.line > m.at.line ||
				      (c->msgs[j - 1].at.line == m.at.line &&
				       c->msgs[j - 1].at.col > m.at.col)); j--)
			c->msgs[j] = c->msgs[j - 1];
		c->msgs[j] = m;
	}
	v = realloc(errs->msg, (errs->n + n + 1) * sizeof(*v));
	if (!v) {
		for (i = 0; i < n; i++)
			free(c->msgs[i].text);
		n = 0;
		c->oom = true;
	} else {
		errs->msg = v;
		for (i = 0; i < n; i++)
			errs->msg[errs->n++] = c->msgs[i].text;
	}
	if (c->oom) {
		errs->msg[errs->n++] = c->oom_text;
		c->oom_text = NULL;
	} else if (c->too_many) {
		errs->msg[errs->n] = fmt_str("%s: too many errors, giving up",
					     c->name);
		if (errs->msg[errs->n])
			errs->n++;
	}
	free(c->msgs);
	c->msgs = NULL;
	c->n_msgs = 0;
}

static size_t path_append(struct ctx *c, const char *sep, const char *s,
			  size_t idx)
{
	size_t old = c->path_len, room = sizeof(c->path) - old;
	int n;

	if (s)
		n = snprintf(c->path + old, room, "%s%s", old ? sep : "", s);
	else
		n = snprintf(c->path + old, room, "[%zu]", idx);
	if (n < 0)
		n = 0;
	c->path_len = (size_t)n < room ? old + (size_t)n : sizeof(c->path) - 1;
	return old;
}

static size_t path_push(struct ctx *c, const char *key)
{
	return path_append(c, ".", key, 0);
}

static size_t path_push_index(struct ctx *c, size_t idx)
{
	return path_append(c, "", NULL, idx);
}

static void path_pop(struct ctx *c, size_t old)
{
	c->path_len = old;
	c->path[old] = '\0';
}

/* ---- event plumbing ------------------------------------------------- */

/* Line and column of byte OFFSET (reader errors carry no mark). */
static struct mark offset_mark(const struct ctx *c, size_t offset)
{
	struct mark at = { 1, 1 };
	size_t i;

	for (i = 0; i < offset && i < c->len; i++) {
		unsigned char ch = (unsigned char)c->buf[i];

		if (ch == '\n') {
			at.line++;
			at.col = 1;
		} else if ((ch & 0xc0) != 0x80) {
			at.col++;
		}
	}
	return at;
}

static void syntax_error(struct ctx *c)
{
	const yaml_parser_t *p = &c->parser;
	struct mark at;
	size_t old;

	if (p->error == YAML_MEMORY_ERROR) {
		oom(c);
		return;
	}
	/* What was found so far may be an artefact of the broken syntax
	 * (a mapping cut short looks like a missing key): report only this. */
	while (c->n_msgs)
		free(c->msgs[--c->n_msgs].text);
	if (p->error == YAML_READER_ERROR)
		at = offset_mark(c, p->problem_offset);
	else
		at = ymark(p->problem_mark);
	old = c->path_len;
	c->path_len = 0;
	error_at(c, at, "syntax error: %s",
		 p->problem ? p->problem : "malformed YAML");
	c->path_len = old;
	c->stop = true;
}

/* Move to the next event.  0, or -1 once parsing must stop. */
static int next(struct ctx *c)
{
	if (c->have_ev) {
		yaml_event_delete(&c->ev);
		c->have_ev = false;
	}
	if (c->stop)
		return -1;
	if (!yaml_parser_parse(&c->parser, &c->ev)) {
		syntax_error(c);
		return -1;
	}
	c->have_ev = true;
	return 0;
}

/* Skip the node starting at the current event, iteratively; leaves the
 * current event on its last event.  Absurd nesting stops the parse: libyaml
 * spends time quadratic in the depth of flow collections. */
static void skip_node(struct ctx *c)
{
	size_t depth;

	if (c->ev.type != YAML_SEQUENCE_START_EVENT &&
	    c->ev.type != YAML_MAPPING_START_EVENT)
		return;
	for (depth = 1; depth; ) {
		if (next(c))
			return;
		switch (c->ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > SKIP_DEPTH_MAX) {
				error_at(c, here(c), "nested more than %d "
					 "levels deep", SKIP_DEPTH_MAX);
				c->stop = true;
				return;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
	}
}

enum kind { K_SCALAR, K_SEQ, K_MAP, K_ALIAS };

/* Classify the node at the current event; anchors and aliases are
 * reported here. */
static enum kind node_kind(struct ctx *c)
{
	const yaml_event_t *e = &c->ev;
	const yaml_char_t *anchor;
	enum kind k;

	switch (e->type) {
	case YAML_SCALAR_EVENT:
		anchor = e->data.scalar.anchor;
		k = K_SCALAR;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = e->data.sequence_start.anchor;
		k = K_SEQ;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = e->data.mapping_start.anchor;
		k = K_MAP;
		break;
	default:
		error_at(c, here(c), "aliases are not supported");
		return K_ALIAS;
	}
	if (anchor)
		error_at(c, here(c), "aliases are not supported");
	return k;
}

enum ntype { N_SCALAR, N_SEQ, N_MAP, N_SEQ_OR_SCALAR };

/* Is the node at the current event of type WANT?  If not, say so and skip
 * it. */
static bool expect(struct ctx *c, enum ntype want)
{
	static const char *const what[] = {
		[N_SCALAR] = "a scalar",
		[N_SEQ] = "a sequence",
		[N_MAP] = "a mapping",
		[N_SEQ_OR_SCALAR] = "a sequence or a scalar",
	};
	enum kind k = node_kind(c);
	bool ok;

	if (k == K_ALIAS)
		return false;
	switch (want) {
	case N_SCALAR:
		ok = k == K_SCALAR;
		break;
	case N_SEQ:
		ok = k == K_SEQ;
		break;
	case N_MAP:
		ok = k == K_MAP;
		break;
	default:
		ok = k == K_SEQ || k == K_SCALAR;
		break;
	}
	if (!ok) {
		error_at(c, here(c), "expected %s", what[want]);
		skip_node(c);
	}
	return ok;
}

/* The scalar at the current event, or NULL (reported) if unusable. */
static const char *scalar(struct ctx *c)
{
	const char *v = (const char *)c->ev.data.scalar.value;
	size_t n = c->ev.data.scalar.length;

	if (n > SCALAR_MAX) {
		error_at(c, here(c), "longer than %d bytes", SCALAR_MAX);
		return NULL;
	}
	if (strlen(v) != n) {
		error_at(c, here(c), "must not contain a NUL byte");
		return NULL;
	}
	return v;
}

typedef void key_fn(struct ctx *c, const char *key, struct mark at,
		    void *arg);

/* Walk the mapping at the current event.  For each entry with a usable
 * scalar key, move to the value and call FN, which consumes it.  The
 * current event ends on MAPPING-END. */
static void map_each(struct ctx *c, key_fn *fn, void *arg)
{
	char key[SCALAR_MAX + 1];

	for (;;) {
		const char *v = NULL;
		struct mark at;
		enum kind k;

		if (next(c) || c->ev.type == YAML_MAPPING_END_EVENT)
			return;
		at = here(c);
		k = node_kind(c);
		if (k == K_SCALAR) {
			v = scalar(c);
		} else if (k != K_ALIAS) {
			error_at(c, at, "keys must be scalars");
			skip_node(c);
		}
		if (v)
			memcpy(key, v, strlen(v) + 1);
		if (next(c))
			return;
		if (v)
			fn(c, key, at, arg);
		else
			skip_node(c);
	}
}

typedef void item_fn(struct ctx *c, void *arg);

/* Walk the sequence at the current event, calling FN for each item with
 * "[i]" on the key path.  Returns the number of items. */
static size_t seq_each(struct ctx *c, item_fn *fn, void *arg)
{
	size_t i, old;

	for (i = 0;; i++) {
		if (next(c) || c->ev.type == YAML_SEQUENCE_END_EVENT)
			return i;
		old = path_push_index(c, i);
		fn(c, arg);
		path_pop(c, old);
	}
}

/* ---- table-driven mappings ------------------------------------------ */

typedef void field_fn(struct ctx *c, void *obj, size_t off);

struct field {
	const char *key;
	enum ntype type;
	field_fn *fn;
	size_t off;		/* into the handler's object */
	bool required;
};

struct fields_walk {
	const struct field *f;
	size_t n;
	void *obj;
	unsigned seen;
};

static void field_key(struct ctx *c, const char *key, struct mark at,
		      void *arg)
{
	struct fields_walk *w = arg;
	size_t i, old = path_push(c, key);

	for (i = 0; i < w->n && strcmp(w->f[i].key, key); i++)
		;
	if (i == w->n) {
		error_at(c, at, "unknown key");
		skip_node(c);
	} else if (w->seen & (1u << i)) {
		error_at(c, at, "duplicate key");
		skip_node(c);
	} else {
		w->seen |= 1u << i;
		if (expect(c, w->f[i].type))
			w->f[i].fn(c, w->obj, w->f[i].off);
	}
	path_pop(c, old);
}

/* Parse the mapping at the current event with table F into OBJ; missing
 * required keys are reported at MISSING_AT. */
static void parse_fields(struct ctx *c, const struct field *f, size_t n,
			 void *obj, struct mark missing_at)
{
	struct fields_walk w = { f, n, obj, 0 };
	size_t i;

	map_each(c, field_key, &w);
	for (i = 0; i < n && !c->stop; i++)
		if (f[i].required && !(w.seen & (1u << i)))
			error_at(c, missing_at, "missing required key \"%s\"",
				 f[i].key);
}

/* ---- value parsers --------------------------------------------------- */

/* Parse a duration; NULL, or why not (written into WHY). */
static const char *parse_duration(const char *s, uint64_t *ms, char *why,
				  size_t why_len)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 },
		{ "h", 60 * 60 * 1000 }, { "d", 24 * 60 * 60 * 1000 },
	};
	uint64_t total = 0;
	const char *p = s;
	bool big = false;

	if (!*p)
		return "must not be empty";
	while (*p) {
		uint64_t v = 0;
		const char *u;
		size_t i, ulen;

		if (*p < '0' || *p > '9')
			return "expected a number and a unit, e.g. 5s or 1h30m";
		for (; *p >= '0' && *p <= '9'; p++) {
			if (v > (UINT64_MAX - 9) / 10)
				big = true;
			else
				v = v * 10 + (uint64_t)(*p - '0');
		}
		if (*p == '.' || *p == ',')
			return "fractions are not supported: use a smaller "
			       "unit, e.g. 1500ms";
		for (u = p; *p && (*p < '0' || *p > '9'); p++)
			;
		ulen = (size_t)(p - u);
		if (!ulen)
			return "a unit is required (ms, s, m, h, d)";
		for (i = 0; i < ARRAY_SIZE(units); i++)
			if (strlen(units[i].name) == ulen &&
			    !strncmp(units[i].name, u, ulen))
				break;
		if (i == ARRAY_SIZE(units)) {
			snprintf(why, why_len, "unknown unit \"%.*s\"",
				 ulen > 64 ? 64 : (int)ulen, u);
			return why;
		}
		if (v > UINT64_MAX / units[i].ms ||
		    total > UINT64_MAX - v * units[i].ms)
			big = true;
		else
			total += v * units[i].ms;
	}
	if (big || total > CONFIG_MAX_DURATION_MS)
		return "longer than 30 days";
	if (!total)
		return "must be greater than zero";
	*ms = total;
	return NULL;
}

/* Why NAME is not a usable namespace name, or NULL. */
static const char *ns_name_problem(const char *name)
{
	if (!*name)
		return "must not be empty";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "must not be \".\" or \"..\"";
	if (strchr(name, '/'))
		return "must not contain '/'";
	if (strlen(name) > NS_NAME_MAX)
		return "longer than 255 bytes";
	return NULL;
}

static bool valid_service_name(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			     "abcdefghijklmnopqrstuvwxyz0123456789_.-");

	return n && !s[n] && n <= SERVICE_NAME_MAX;
}

/* ---- handlers: each consumes the node at the current event ---------- */

/* Replace the string at DST with a copy of V. */
static void set_str(struct ctx *c, char **dst, const char *v)
{
	char *dup = strdup(v);

	if (!dup) {
		oom(c);
		return;
	}
	free(*dst);
	*dst = dup;
}

/* The current scalar if it is not empty; else NULL, reported. */
static const char *nonempty(struct ctx *c)
{
	const char *v = scalar(c);

	if (v && !*v) {
		error_at(c, here(c), "must not be empty");
		return NULL;
	}
	return v;
}

static void h_user(struct ctx *c, void *obj, size_t off)
{
	char **dst = (char **)((char *)obj + off);
	const char *v = nonempty(c);

	if (!v)
		return;
	if (!strcmp(v, "root") || strspn(v, "0") == strlen(v)) {
		error_at(c, here(c),
			 "must not be root: upstreams would see uid 0");
		return;
	}
	set_str(c, dst, v);
}

static void h_abs_path(struct ctx *c, void *obj, size_t off)
{
	char **dst = (char **)((char *)obj + off);
	const char *v = scalar(c);

	if (!v)
		return;
	if (v[0] != '/') {
		error_at(c, here(c), "must be an absolute path");
		return;
	}
	set_str(c, dst, v);
}

static void h_duration(struct ctx *c, void *obj, size_t off)
{
	uint64_t *dst = (uint64_t *)(void *)((char *)obj + off);
	const char *v = scalar(c), *why;
	char buf[128];

	if (!v)
		return;
	why = parse_duration(v, dst, buf, sizeof(buf));
	if (why)
		error_at(c, here(c), "bad duration \"%s\": %s", v, why);
}

static void h_ns_all(struct ctx *c, void *obj, size_t off)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char *v = scalar(c);
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
	error_at(c, here(c), "expected true or false, not \"%s\"", v);
}

/* A list of namespace names being filled in. */
struct ns_list {
	char ***names;
	size_t *n;
	struct mark **at;
	struct strset *set;
	size_t count;		/* items seen, valid or not */
};

static void ns_item(struct ctx *c, void *arg)
{
	struct ns_list *l = arg;
	struct mark at = here(c), *m;
	const char *v, *why;
	char **names, *dup;
	size_t prev;

	l->count++;
	if (!expect(c, N_SCALAR) || !(v = scalar(c)))
		return;
	why = ns_name_problem(v);
	if (why) {
		error_at(c, at, "bad namespace name \"%s\": %s", v, why);
		return;
	}
	prev = set_get(l->set, v);
	if (prev != SIZE_MAX) {
		error_at(c, at, "\"%s\" is already listed at %u:%u", v,
			 (*l->at)[prev].line, (*l->at)[prev].col);
		return;
	}
	names = grow(*l->names, *l->n, sizeof(**l->names));
	if (names)
		*l->names = names;
	m = names ? grow(*l->at, *l->n, sizeof(**l->at)) : NULL;
	if (m)
		*l->at = m;
	dup = m ? strdup(v) : NULL;
	if (!dup || set_put(l->set, dup, *l->n)) {
		free(dup);
		oom(c);
		return;
	}
	(*l->names)[*l->n] = dup;
	(*l->at)[(*l->n)++] = at;
}

static void h_ns_names(struct ctx *c, void *obj, size_t off)
{
	struct config *cfg = c->cfg;
	struct ns_list l = {
		&cfg->namespaces, &cfg->n_namespaces, &c->names_at,
		&c->ns_names, 0
	};

	c->names_set = true;
	seq_each(c, ns_item, &l);
	c->names_count = l.count;
}

/* Any non-empty scalar, kept as a string. */
static void h_string(struct ctx *c, void *obj, size_t off)
{
	char **dst = (char **)((char *)obj + off);
	const char *v = nonempty(c);

	if (v)
		set_str(c, dst, v);
}

/* A string whose position is needed later: OFF is that of a struct
 * config_provision field; the location goes to the matching _at field. */
static void h_located(struct ctx *c, void *obj, size_t off)
{
	static const struct {
		size_t str, at;
	} map[] = {
#define LOC(f) { offsetof(struct config_provision, f), \
		 offsetof(struct config_provision, f##_at) }
		LOC(ipv4_pool), LOC(ipv6_pool), LOC(ns_template),
		LOC(host_template), LOC(peer_template),
#undef LOC
	};
	struct config_loc *at = NULL;
	struct mark m = here(c);

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i].str == off)
			at = (struct config_loc *)(void *)((char *)obj +
							   map[i].at);
	h_string(c, obj, off);
	if (at) {
		at->line = m.line;
		at->col = m.col;
	}
}

static void h_glob(struct ctx *c, void *obj, size_t off)
{
	const char *v = scalar(c);

	if (!v)
		return;
	if (!*v || strchr(v, '/')) {
		error_at(c, here(c), "bad glob \"%s\": a non-empty pattern "
			 "for names, without '/'", v);
		return;
	}
	h_string(c, obj, off);
}

/* An unsigned integer below LIMIT; 0 or -1 with an error at here(). */
static int parse_uint(struct ctx *c, const char *v, unsigned long limit,
		      unsigned long *out)
{
	char *end;

	errno = 0;
	if (!*v || !strchr("0123456789", v[0]) ||
	    (*out = strtoul(v, &end, 10), errno) || *end || *out >= limit) {
		error_at(c, here(c), "expected a whole number below %lu, not "
			 "\"%s\"", limit, v);
		return -1;
	}
	return 0;
}

static void h_uid_base(struct ctx *c, void *obj, size_t off)
{
	const char *v = scalar(c);
	unsigned long n;

	if (v && parse_uint(c, v, 0xffffffffUL, &n) == 0)
		c->cfg->provision.uid_base = (uint32_t)n;
}

static void prov_user_add(struct ctx *c, const char *name, long index,
			  struct mark at)
{
	struct config_provision *p = &c->cfg->provision;
	struct config_prov_user *u;
	const char *why = ns_name_problem(name);
	size_t prev = set_get(&c->prov_users, name);

	if (why || !*name) {
		error_at(c, at, "bad user name \"%s\"", name);
		return;
	}
	if (prev != SIZE_MAX) {
		error_at(c, at, "\"%s\" is already listed at %u:%u", name,
			 p->users[prev].at.line, p->users[prev].at.col);
		return;
	}
	u = grow(p->users, p->n_users, sizeof(*u));
	if (!u) {
		oom(c);
		return;
	}
	p->users = u;
	u = &p->users[p->n_users];
	u->name = strdup(name);
	if (!u->name || set_put(&c->prov_users, u->name, p->n_users)) {
		free(u->name);
		oom(c);
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

static void h_entry_name(struct ctx *c, void *obj, size_t off)
{
	h_string(c, obj, offsetof(struct user_entry, name));
}

static void h_entry_index(struct ctx *c, void *obj, size_t off)
{
	struct user_entry *e = obj;
	const char *v = scalar(c);
	unsigned long n;

	if (v && parse_uint(c, v, 65536, &n) == 0)
		e->index = (long)n;
}

static const struct field user_fields[] = {
	{ "name", N_SCALAR, h_entry_name, 0, true },
	{ "index", N_SCALAR, h_entry_index, 0, false },
};

static void user_item(struct ctx *c, void *arg)
{
	struct mark at = here(c);
	struct user_entry e = { NULL, -1 };
	const char *v;

	if (node_kind(c) == K_MAP) {
		parse_fields(c, user_fields, ARRAY_SIZE(user_fields), &e, at);
		if (e.name)
			prov_user_add(c, e.name, e.index, at);
		free(e.name);
		return;
	}
	if (!expect(c, N_SCALAR) || !(v = scalar(c)))
		return;
	prov_user_add(c, v, -1, at);
}

static void h_prov_users(struct ctx *c, void *obj, size_t off)
{
	seq_each(c, user_item, NULL);
}

static const struct field prov_fields[] = {
#define PF(k, f, fn) { k, N_SCALAR, fn, \
		       offsetof(struct config_provision, f), false }
	{ "users", N_SEQ, h_prov_users, 0, false },
	{ "uid_base", N_SCALAR, h_uid_base, 0, false },
	PF("ipv4_pool", ipv4_pool, h_located),
	PF("ipv6_pool", ipv6_pool, h_located),
	PF("namespace", ns_template, h_located),
	PF("host_interface", host_template, h_located),
	PF("namespace_interface", peer_template, h_located),
	PF("control", control, h_abs_path),
	PF("hosts_file", hosts_file, h_abs_path),
	PF("domain", domain, h_string),
#undef PF
};

static void h_provision(struct ctx *c, void *obj, size_t off)
{
	c->cfg->provision.enabled = true;
	parse_fields(c, prov_fields, ARRAY_SIZE(prov_fields),
		     &c->cfg->provision, here(c));
}

static const struct field ns_fields[] = {
	{ "dir", N_SCALAR, h_abs_path, offsetof(struct config, netns_dir),
	  false },
	{ "all", N_SCALAR, h_ns_all, 0, false },
	{ "names", N_SEQ, h_ns_names, 0, false },
	{ "match", N_SCALAR, h_glob, offsetof(struct config, ns_match),
	  false },
};

static void h_namespaces(struct ctx *c, void *obj, size_t off)
{
	c->ns_at = here(c);
	parse_fields(c, ns_fields, ARRAY_SIZE(ns_fields), c->cfg, here(c));
}

static const struct field defaults_fields[] = {
	{ "connect_timeout", N_SCALAR, h_duration,
	  offsetof(struct ctx, def_connect_ms), false },
	{ "idle_timeout", N_SCALAR, h_duration,
	  offsetof(struct ctx, def_idle_ms), false },
	{ "fin_timeout", N_SCALAR, h_duration,
	  offsetof(struct ctx, def_fin_ms), false },
};

static void h_defaults(struct ctx *c, void *obj, size_t off)
{
	parse_fields(c, defaults_fields, ARRAY_SIZE(defaults_fields), c,
		     here(c));
}

static void listen_item(struct ctx *c, void *arg)
{
	struct config_service *s = arg;
	struct config_sockaddr sa, *v;
	const char *text, *why;

	if (!expect(c, N_SCALAR) || !(text = scalar(c)))
		return;
	if (config_parse_sockaddr(text, false, &sa, &why)) {
		error_at(c, here(c), "%s", why);
		return;
	}
	sa.line = here(c).line;
	sa.col = here(c).col;
	v = grow(s->listen, s->n_listen, sizeof(*v));
	if (!v) {
		oom(c);
		return;
	}
	s->listen = v;
	s->listen[s->n_listen++] = sa;
}

static void h_listen(struct ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct mark at = here(c);

	if (c->ev.type == YAML_SCALAR_EVENT) {
		c->meta[s - c->cfg->services].listen_scalar = true;
		listen_item(c, s);
	} else if (!seq_each(c, listen_item, s)) {
		error_at(c, at, "at least one address is required");
	}
}

static void h_upstream(struct ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	const char *text = scalar(c), *why;

	if (!text)
		return;
	if (config_parse_sockaddr(text, true, &s->upstream, &why)) {
		error_at(c, here(c), "%s", why);
		memset(&s->upstream, 0, sizeof(s->upstream));
		return;
	}
	s->upstream.line = here(c).line;
	s->upstream.col = here(c).col;
}

static void h_svc_namespaces(struct ctx *c, void *obj, size_t off)
{
	struct config_service *s = obj;
	struct strset set = { NULL, 0, 0 };
	struct ns_list l = {
		&s->namespaces, &s->n_namespaces,
		&c->meta[s - c->cfg->services].ns_at, &set, 0
	};
	struct mark at = here(c);

	seq_each(c, ns_item, &l);
	set_free(&set);
	if (!l.count)
		error_at(c, at, "at least one namespace is required "
			 "(leave the key out for all of them)");
}

static const struct field service_fields[] = {
	{ "listen", N_SEQ_OR_SCALAR, h_listen, 0, true },
	{ "upstream", N_SCALAR, h_upstream, 0, true },
	{ "connect_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_service, connect_timeout_ms), false },
	{ "idle_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_service, idle_timeout_ms), false },
	{ "fin_timeout", N_SCALAR, h_duration,
	  offsetof(struct config_service, fin_timeout_ms), false },
	{ "namespaces", N_SEQ, h_svc_namespaces, 0, false },
};

static void service_key(struct ctx *c, const char *name, struct mark at,
			void *arg)
{
	struct config *cfg = c->cfg;
	struct config_service *s;
	struct svc_meta *m;
	size_t old;

	c->n_service_keys++;
	if (!valid_service_name(name))
		error_at(c, at, "bad service name \"%s\": use 1 to %d letters, "
			 "digits, '_', '.' or '-'", name, SERVICE_NAME_MAX);
	old = path_push(c, name);
	if (set_get(&c->svc_names, name) != SIZE_MAX) {
		error_at(c, at, "duplicate key");
		skip_node(c);
		goto out;
	}
	if (!expect(c, N_MAP))
		goto out;
	s = grow(cfg->services, cfg->n_services, sizeof(*s));
	if (s)
		cfg->services = s;
	m = s ? grow(c->meta, cfg->n_services, sizeof(*m)) : NULL;
	if (m)
		c->meta = m;
	s = m ? &cfg->services[cfg->n_services] : NULL;
	if (s) {
		memset(s, 0, sizeof(*s));
		memset(&c->meta[cfg->n_services], 0, sizeof(*m));
		s->name = strdup(name);
	}
	if (!s || !s->name ||
	    set_put(&c->svc_names, s->name, cfg->n_services)) {
		if (s)
			free(s->name);
		oom(c);
		goto out;
	}
	s->line = at.line;
	s->col = at.col;
	cfg->n_services++;
	parse_fields(c, service_fields, ARRAY_SIZE(service_fields), s, at);
out:
	path_pop(c, old);
}

static void h_services(struct ctx *c, void *obj, size_t off)
{
	struct mark at = here(c);

	map_each(c, service_key, NULL);
	if (!c->stop && !c->n_service_keys)
		error_at(c, at, "at least one service is required");
}

static const struct field top_fields[] = {
	{ "user", N_SCALAR, h_user, offsetof(struct config, user), false },
	{ "bind_retry_max", N_SCALAR, h_duration,
	  offsetof(struct config, retry_max_ms), false },
	{ "namespaces", N_MAP, h_namespaces, 0, false },
	{ "defaults", N_MAP, h_defaults, 0, false },
	{ "services", N_MAP, h_services, 0, true },
	{ "provision", N_MAP, h_provision, 0, false },
};

/* ---- whole-file checks --------------------------------------------- */

/* One listen address, for finding clashes. */
struct listen_ref {
	const struct config_sockaddr *a;
	size_t svc, idx;
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
	int r = addr_cmp(a->a, b->a);

	if (r)
		return r;
	if (a->svc != b->svc)
		return a->svc < b->svc ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Put "services.NAME.listen[i]" (or without [i]) into BUF. */
static void listen_path(const struct ctx *c, size_t svc, size_t idx,
			char *buf, size_t len)
{
	const struct config_service *s = &c->cfg->services[svc];

	if (c->meta[svc].listen_scalar)
		snprintf(buf, len, "services.%s.listen", s->name);
	else
		snprintf(buf, len, "services.%s.listen[%zu]", s->name, idx);
}

static void report_clash(struct ctx *c, const struct listen_ref *r,
			 const struct listen_ref *p)
{
	char path[SERVICE_NAME_MAX * 4 + 64], there[sizeof(path)];
	struct mark at = { r->a->line, r->a->col };

	listen_path(c, r->svc, r->idx, path, sizeof(path));
	path_push(c, path);
	if (p->svc == r->svc) {
		error_at(c, at, "%s is already listed at %u:%u", r->a->text,
			 p->a->line, p->a->col);
	} else {
		listen_path(c, p->svc, p->idx, there, sizeof(there));
		error_at(c, at, "%s is already used by service %s (%s at "
			 "%u:%u)", r->a->text, c->cfg->services[p->svc].name,
			 there, p->a->line, p->a->col);
	}
	path_pop(c, 0);
}

/* Within REFS[G..E), one address in document order, report every entry
 * that an earlier one already serves in a common namespace: the same
 * service, or either goes everywhere, or their lists share a name.  Linear:
 * keep the first entry of the current service, the first one going
 * everywhere and the first one naming each namespace. */
static void check_group(struct ctx *c, const struct listen_ref *refs,
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
			size_t q = set_get(&names, s->namespaces[k]);

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
			if (set_get(&names, s->namespaces[k]) != SIZE_MAX)
				continue;
			if (set_put(&names, s->namespaces[k], j)) {
				oom(c);
				break;
			}
		}
	}
	set_free(&names);
}

/* Report the same (namespace, address) pair served twice. */
static void check_listen_clashes(struct ctx *c)
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
		oom(c);
		return;
	}
	for (n = 0, i = 0; i < cfg->n_services; i++) {
		for (j = 0; j < cfg->services[i].n_listen; j++) {
			refs[n].a = &cfg->services[i].listen[j];
			refs[n].svc = i;
			refs[n++].idx = j;
		}
	}
	qsort(refs, n, sizeof(*refs), listen_ref_cmp);
	for (g = 0; g < n && !c->stop; g = i) {
		for (i = g + 1; i < n && !addr_cmp(refs[g].a, refs[i].a); i++)
			;
		if (i - g > 1)
			check_group(c, refs, g, i);
	}
	free(refs);
}

/* Checks and defaults that need the whole file. */
static void finish(struct ctx *c)
{
	struct config *cfg = c->cfg;
	char buf[SERVICE_NAME_MAX * 4 + 64];
	size_t i, j;

	if (!c->all_set)
		cfg->ns_all = !c->names_set;
	if (!cfg->ns_all && !c->names_count) {
		path_push(c, "namespaces");
		error_at(c, c->ns_at, "no namespace to serve: set all: true "
			 "or list names");
		path_pop(c, 0);
	}
	for (i = 0; i < cfg->n_services && !cfg->ns_all; i++) {
		const struct config_service *s = &cfg->services[i];

		for (j = 0; j < s->n_namespaces; j++) {
			if (set_get(&c->ns_names, s->namespaces[j]) !=
			    SIZE_MAX)
				continue;
			snprintf(buf, sizeof(buf),
				 "services.%s.namespaces[%zu]", s->name, j);
			path_push(c, buf);
			error_at(c, c->meta[i].ns_at[j], "namespace '%s' is "
				 "not in namespaces.names", s->namespaces[j]);
			path_pop(c, 0);
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
			s->idle_timeout_ms = c->def_idle_ms;
		if (!s->fin_timeout_ms)
			s->fin_timeout_ms = c->def_fin_ms;
	}
	if (!cfg->retry_max_ms)
		cfg->retry_max_ms = CONFIG_DEFAULT_RETRY_MAX_MS;
	if (!cfg->netns_dir)
		cfg->netns_dir = strdup(CONFIG_DEFAULT_NETNS_DIR);
	if (!cfg->user)
		cfg->user = strdup(CONFIG_DEFAULT_USER);
	if (cfg->provision.enabled && !cfg->provision.control &&
	    !(cfg->provision.control = strdup(CONFIG_DEFAULT_CONTROL)))
		oom(c);
	cfg->path = strdup(c->name);
	if (!cfg->netns_dir || !cfg->user || !cfg->path)
		oom(c);
}

/* STREAM-START DOCUMENT-START mapping DOCUMENT-END STREAM-END */
static void parse_stream(struct ctx *c)
{
	static const struct mark top = { 1, 1 };

	if (next(c) || next(c))
		return;
	if (c->ev.type == YAML_STREAM_END_EVENT) {
		error_at(c, top, "expected a mapping at the top level");
		return;
	}
	if (next(c))
		return;
	if (c->ev.type == YAML_MAPPING_START_EVENT) {
		node_kind(c);
		parse_fields(c, top_fields, ARRAY_SIZE(top_fields), c->cfg,
			     top);
	} else {
		error_at(c, top, "expected a mapping at the top level");
		skip_node(c);
	}
	if (next(c) || next(c))		/* DOCUMENT-END, then the next */
		return;
	if (c->ev.type == YAML_DOCUMENT_START_EVENT) {
		error_at(c, here(c), "only one document is allowed");
		c->stop = true;
	}
}

/* ---- public API -------------------------------------------------------- */

int config_parse_buffer(const char *name, const char *buf, size_t len,
			struct config **out, struct config_errors *errs)
{
	bool had_msg = errs->msg != NULL;
	struct ctx *c;
	char **slot;
	size_t i;
	int rc = -1;

	*out = NULL;
	if (!name)
		name = "(config)";
	if (len > MAX_FILE_SIZE) {
		errs_add(errs, "%s: file too large", name);
		return -1;
	}
	/* Reserve one message (slot and text) now, so that running out of
	 * memory later can still be reported.  The context is big (the key
	 * path buffer): keep it off the stack. */
	slot = realloc(errs->msg, (errs->n + 1) * sizeof(*slot));
	if (slot)
		errs->msg = slot;
	c = slot ? calloc(1, sizeof(*c)) : NULL;
	if (c)
		c->oom_text = fmt_str("%s: out of memory", name);
	if (!c || !c->oom_text) {
		free(c);
		errs_add(errs, "%s: out of memory", name);	/* may fail */
		return -1;
	}
	c->name = name;
	c->buf = buf;
	c->len = len;
	c->cfg = calloc(1, sizeof(*c->cfg));
	if (c->cfg)
		c->cfg->provision.uid_base = CONFIG_DEFAULT_UID_BASE;
	if (!c->cfg || !yaml_parser_initialize(&c->parser)) {
		free(c->cfg);
		c->cfg = NULL;
		oom(c);
		goto cleanup;
	}
	yaml_parser_set_input_string(&c->parser, (const unsigned char *)buf,
				     len);
	parse_stream(c);
	if (!c->stop)
		finish(c);
	if (c->have_ev)
		yaml_event_delete(&c->ev);
	yaml_parser_delete(&c->parser);
	for (i = 0; i < c->cfg->n_services; i++)
		free(c->meta[i].ns_at);
	if (!c->n_msgs && !c->too_many && !c->oom) {
		rc = 0;
		*out = c->cfg;
		c->cfg = NULL;
	}
cleanup:
	free(c->meta);
	free(c->names_at);
	set_free(&c->svc_names);
	set_free(&c->ns_names);
	set_free(&c->prov_users);
	config_free(c->cfg);
	if (rc)
		flush_msgs(c, errs);
	else if (!errs->n && !had_msg) {
		free(errs->msg);	/* the reserved slot */
		errs->msg = NULL;
	}
	free(c->oom_text);
	free(c);
	return rc;
}

int config_load(const char *path, struct config **out,
		struct config_errors *errs)
{
	char *buf = NULL, *p;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, rc = -1;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errs_add(errs, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 64 * 1024;
			if (cap > MAX_FILE_SIZE + 1)
				cap = MAX_FILE_SIZE + 1;
			p = realloc(buf, cap);
			if (!p) {
				errs_add(errs, "%s: %s", path,
					 strerror(ENOMEM));
				goto cleanup;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errs_add(errs, "%s: %s", path, strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_FILE_SIZE) {
			errs_add(errs, "%s: file too large", path);
			goto cleanup;
		}
	}
	rc = config_parse_buffer(path, buf, len, out, errs);
cleanup:
	free(buf);
	close(fd);
	return rc;
}

bool config_service_in_ns(const struct config_service *s, const char *name)
{
	return !s->n_namespaces ||
	       in_strv(s->namespaces, s->n_namespaces, name);
}

bool config_serves_ns(const struct config *cfg, const char *name)
{
	if (!config_valid_ns_name(name))
		return false;
	if (in_strv(cfg->namespaces, cfg->n_namespaces, name))
		return true;
	return cfg->ns_all &&
	       (!cfg->ns_match || fnmatch(cfg->ns_match, name, 0) == 0);
}

long config_provision_index(const struct config *cfg, const char *user)
{
	const struct config_provision *p = &cfg->provision;

	for (size_t i = 0; i < p->n_users; i++)
		if (strcmp(p->users[i].name, user) == 0)
			return p->users[i].index;
	return -1;
}

bool config_valid_ns_name(const char *name)
{
	return name && !ns_name_problem(name);
}

int config_parse_duration(const char *s, uint64_t *ms)
{
	char why[128];
	uint64_t v;

	if (!s || parse_duration(s, &v, why, sizeof(why)))
		return -EINVAL;
	*ms = v;
	return 0;
}

static int parse_unix(const char *s, struct config_sockaddr *out,
		      const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)(void *)&out->sa;
	const char *path = strncmp(s, "unix:", 5) ? s : s + 5;
	size_t n = strlen(path);

	if (path[0] != '/') {
		*why = "unix socket path must be absolute";
		return -EINVAL;
	}
	if (n >= sizeof(sun->sun_path)) {
		*why = "unix socket path too long";
		return -EINVAL;
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	snprintf(out->text, sizeof(out->text), "unix:%s", path);
	return 0;
}

/* Decimal port 1..65535 at P; 0 or -EINVAL (reason may live in out->text,
 * which is why *why is documented as valid while OUT is). */
static int parse_port(const char *p, unsigned *port,
		      struct config_sockaddr *out, const char **why)
{
	unsigned long v = 0;
	const char *q;

	if (!*p) {
		*why = "missing port";
		return -EINVAL;
	}
	for (q = p; *q; q++) {
		if (*q < '0' || *q > '9') {
			*why = "port must be a decimal number";
			return -EINVAL;
		}
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*q - '0');
	}
	if (v < 1 || v > 65535) {
		snprintf(out->text, sizeof(out->text),
			 "port %.32s%s out of range", p,
			 strlen(p) > 32 ? "..." : "");
		*why = out->text;
		return -EINVAL;
	}
	*port = (unsigned)v;
	return 0;
}

int config_parse_sockaddr(const char *s, bool allow_unix,
			  struct config_sockaddr *out, const char **why)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&out->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&out->sa;
	char host[INET6_ADDRSTRLEN + 1], ip[INET6_ADDRSTRLEN];
	const char *port, *colon, *end;
	struct in6_addr a6;
	struct in_addr a4;
	unsigned portnum;
	size_t n;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (!s || !*s) {
		*why = "empty address";
		return -EINVAL;
	}
	if (!strncmp(s, "unix:", 5) || s[0] == '/') {
		if (allow_unix)
			return parse_unix(s, out, why);
		*why = "unix sockets are not allowed here";
		return -EINVAL;
	}
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end) {
			*why = "missing ']' after the IPv6 address";
			return -EINVAL;
		}
		n = (size_t)(end - s - 1);
		if (n >= sizeof(host))
			n = sizeof(host) - 1;	/* inet_pton will refuse */
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			*why = "not an IPv6 address";
			return -EINVAL;
		}
		if (end[1] && end[1] != ':') {
			*why = "expected ':' and a port after ']'";
			return -EINVAL;
		}
		port = end[1] ? end + 2 : end + 1;
		if (parse_port(port, &portnum, out, why))
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = a6;
		sin6->sin6_port = htons((uint16_t)portnum);
		out->len = sizeof(*sin6);
		inet_ntop(AF_INET6, &a6, ip, sizeof(ip));
		snprintf(out->text, sizeof(out->text), "[%s]:%u", ip, portnum);
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || colon != strchr(s, ':')) {
		/* none, or several: maybe an IPv6 address without brackets */
		n = colon ? (size_t)(colon - s) : 0;
		if (colon && n < sizeof(host)) {
			memcpy(host, s, n);
			host[n] = '\0';
		}
		if (inet_pton(AF_INET6, s, &a6) == 1 ||
		    (colon && n < sizeof(host) &&
		     inet_pton(AF_INET6, host, &a6) == 1))
			*why = "IPv6 addresses need brackets: [::1]:3306";
		else if (!colon)
			*why = "missing port";
		else
			*why = "not an IP address (host names are not "
			       "supported)";
		return -EINVAL;
	}
	n = (size_t)(colon - s);
	if (!n) {
		*why = "missing IP address";
		return -EINVAL;
	}
	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &a4) != 1) {
		*why = "not an IP address (host names are not supported)";
		return -EINVAL;
	}
	if (parse_port(colon + 1, &portnum, out, why))
		return -EINVAL;
	sin->sin_family = AF_INET;
	sin->sin_addr = a4;
	sin->sin_port = htons((uint16_t)portnum);
	out->len = sizeof(*sin);
	inet_ntop(AF_INET, &a4, ip, sizeof(ip));
	snprintf(out->text, sizeof(out->text), "%s:%u", ip, portnum);
	return 0;
}

void config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].name);
		free(cfg->services[i].listen);
		free_strv(cfg->services[i].namespaces,
			  cfg->services[i].n_namespaces);
	}
	free(cfg->services);
	free_strv(cfg->namespaces, cfg->n_namespaces);
	free(cfg->path);
	free(cfg->netns_dir);
	free(cfg->user);
	free(cfg->ns_match);
	for (i = 0; i < cfg->provision.n_users; i++)
		free(cfg->provision.users[i].name);
	free(cfg->provision.users);
	free(cfg->provision.ipv4_pool);
	free(cfg->provision.ipv6_pool);
	free(cfg->provision.ns_template);
	free(cfg->provision.host_template);
	free(cfg->provision.peer_template);
	free(cfg->provision.control);
	free(cfg->provision.hosts_file);
	free(cfg->provision.domain);
	free(cfg);
}

void config_errors_clear(struct config_errors *errs)
{
	if (!errs)
		return;
	free_strv(errs->msg, errs->n);
	errs->msg = NULL;
	errs->n = 0;
}
