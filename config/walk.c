/* SPDX-License-Identifier: MIT */
/* walk.c: walk libyaml's events, keep the key path, collect messages.
 *
 * How it works: libyaml's event parser feeds a small recursive-descent
 * walker whose depth is bounded by the schema (top -> services -> service ->
 * listen list), never by the input.  Each mapping is described by a table of
 * {key, node type, handler, offset} (struct field); a handler consumes
 * exactly one node and leaves the current event on that node's last event.
 * Anything the schema does not expect (unknown keys, wrong node types) is
 * reported and skipped iteratively by counting depth.  Messages are
 * collected in the context with their position and the key path of the
 * node ("services.db.listen[1]"), sorted into file order and only then
 * handed to the caller.
 */
#include "config/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct mark ymark(yaml_mark_t m)
{
	struct mark at = { (unsigned)m.line + 1, (unsigned)m.column + 1 };

	return at;
}

struct mark config_here(const struct config_ctx *c)
{
	return ymark(c->ev.start_mark);
}

static void add_msg(struct config_ctx *c, struct mark at, char *text)
{
	struct msg *m;

	if (!text) {
		c->oom = c->stop = true;
		return;
	}
	m = config_grow(c->msgs, c->n_msgs, sizeof(*m));
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
void config_error_at(struct config_ctx *c, struct mark at, const char *fmt, ...)
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
	body = config_vfmt(fmt, ap);
	va_end(ap);
	if (!body) {
		c->oom = c->stop = true;
		return;
	}
	if (c->path_len)
		add_msg(c, at,
			config_fmt("%s:%u:%u: %s: %s", c->name, at.line, at.col,
				   c->path, body));
	else
		add_msg(c, at,
			config_fmt("%s:%u:%u: %s", c->name, at.line, at.col,
				   body));
	free(body);
}

void config_oom(struct config_ctx *c)
{
	c->oom = c->stop = true;	/* config_flush_msgs() says so */
}

int config_errs_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;
	char **v;
	char *s;

	va_start(ap, fmt);
	s = config_vfmt(fmt, ap);
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
void config_flush_msgs(struct config_ctx *c, struct config_errors *errs)
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
		errs->msg[errs->n] =
			config_fmt("%s: too many errors, giving up", c->name);
		if (errs->msg[errs->n])
			errs->n++;
	}
	free(c->msgs);
	c->msgs = NULL;
	c->n_msgs = 0;
}

static size_t path_append(struct config_ctx *c, const char *sep, const char *s,
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

size_t config_path_push(struct config_ctx *c, const char *key)
{
	return path_append(c, ".", key, 0);
}

size_t config_path_push_index(struct config_ctx *c, size_t idx)
{
	return path_append(c, "", NULL, idx);
}

void config_path_pop(struct config_ctx *c, size_t old)
{
	c->path_len = old;
	c->path[old] = '\0';
}

/* ---- event plumbing ------------------------------------------------- */

/* Line and column of byte OFFSET (reader errors carry no mark). */
static struct mark offset_mark(const struct config_ctx *c, size_t offset)
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

static void syntax_error(struct config_ctx *c)
{
	const yaml_parser_t *p = &c->parser;
	struct mark at;
	size_t old;

	if (p->error == YAML_MEMORY_ERROR) {
		config_oom(c);
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
	config_error_at(c, at, "syntax error: %s",
			p->problem ? p->problem : "malformed YAML");
	c->path_len = old;
	c->stop = true;
}

/* Move to the next event.  0, or -1 once parsing must stop. */
int config_next(struct config_ctx *c)
{
	if (c->have_ev) {
		yaml_event_delete(&c->ev);
		c->have_ev = false;
	}
	c->kind_said = false;
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
void config_skip_node(struct config_ctx *c)
{
	size_t depth;

	if (c->ev.type != YAML_SEQUENCE_START_EVENT &&
	    c->ev.type != YAML_MAPPING_START_EVENT)
		return;
	for (depth = 1; depth; ) {
		if (config_next(c))
			return;
		switch (c->ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > SKIP_DEPTH_MAX) {
				config_error_at(c, config_here(c),
						"nested more than %d "
						"levels deep",
						SKIP_DEPTH_MAX);
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

/* Classify the node at the current event; anchors and aliases are
 * reported here. */
enum kind config_node_kind(struct config_ctx *c)
{
	const yaml_event_t *e = &c->ev;
	const yaml_char_t *anchor, *tag;
	enum kind k;

	switch (e->type) {
	case YAML_SCALAR_EVENT:
		anchor = e->data.scalar.anchor;
		tag = e->data.scalar.tag;
		k = K_SCALAR;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = e->data.sequence_start.anchor;
		tag = e->data.sequence_start.tag;
		k = K_SEQ;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = e->data.mapping_start.anchor;
		tag = e->data.mapping_start.tag;
		k = K_MAP;
		break;
	default:
		if (!c->kind_said)
			config_error_at(c, config_here(c),
					"aliases are not supported");
		c->kind_said = true;
		return K_ALIAS;
	}
	if (c->kind_said)
		return k;	/* said once per node is enough */
	c->kind_said = true;
	if (anchor)
		config_error_at(c, config_here(c), "aliases are not supported");
	/* Every value is a string to this schema: a tag (!!python/object,
	 * !!int, !custom) asks for something it will not do. */
	if (tag) {
		size_t n = strlen((const char *)tag);

		config_error_at(c, config_here(c), "tags are not supported "
				"(\"%.64s%s\")", (const char *)tag,
				n > 64 ? "..." : "");
	}
	return k;
}

/* Is the node at the current event of type WANT?  If not, say so and skip
 * it. */
bool config_expect(struct config_ctx *c, enum ntype want)
{
	static const char *const what[] = {
		[N_SCALAR] = "a scalar",
		[N_SEQ] = "a sequence",
		[N_MAP] = "a mapping",
		[N_SEQ_OR_SCALAR] = "a sequence or a scalar",
	};
	enum kind k = config_node_kind(c);
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
		config_error_at(c, config_here(c), "expected %s", what[want]);
		config_skip_node(c);
	}
	return ok;
}

/* The scalar at the current event, or NULL (reported) if unusable. */
const char *config_scalar(struct config_ctx *c)
{
	const char *v = (const char *)c->ev.data.scalar.value;
	size_t n = c->ev.data.scalar.length;

	if (n > SCALAR_MAX) {
		config_error_at(c, config_here(c), "longer than %d bytes",
				SCALAR_MAX);
		return NULL;
	}
	if (strlen(v) != n) {
		config_error_at(c, config_here(c),
				"must not contain a NUL byte");
		return NULL;
	}
	return v;
}

/* Walk the mapping at the current event.  For each entry with a usable
 * scalar key, move to the value and call FN, which consumes it.  The
 * current event ends on MAPPING-END. */
void config_map_each(struct config_ctx *c, key_fn *fn, void *arg)
{
	char key[SCALAR_MAX + 1];

	for (;;) {
		const char *v = NULL;
		struct mark at;
		enum kind k;

		if (config_next(c) || c->ev.type == YAML_MAPPING_END_EVENT)
			return;
		at = config_here(c);
		k = config_node_kind(c);
		if (k == K_SCALAR) {
			v = config_scalar(c);
		} else if (k != K_ALIAS) {
			config_error_at(c, at, "keys must be scalars");
			config_skip_node(c);
		}
		if (v)
			memcpy(key, v, strlen(v) + 1);
		if (config_next(c))
			return;
		if (v)
			fn(c, key, at, arg);
		else
			config_skip_node(c);
	}
}

/* Walk the sequence at the current event, calling FN for each item with
 * "[i]" on the key path.  Returns the number of items. */
size_t config_seq_each(struct config_ctx *c, item_fn *fn, void *arg)
{
	size_t i, old;

	for (i = 0;; i++) {
		if (config_next(c) || c->ev.type == YAML_SEQUENCE_END_EVENT)
			return i;
		old = config_path_push_index(c, i);
		fn(c, arg);
		config_path_pop(c, old);
	}
}

/* ---- table-driven mappings ------------------------------------------ */

struct fields_walk {
	const struct field *f;
	size_t n;
	void *obj;
	unsigned seen;
};

static void field_key(struct config_ctx *c, const char *key, struct mark at,
		      void *arg)
{
	struct fields_walk *w = arg;
	size_t i, old = config_path_push(c, key);

	for (i = 0; i < w->n && strcmp(w->f[i].key, key); i++)
		;
	if (i == w->n) {
		config_error_at(c, at, "unknown key");
		config_skip_node(c);
	} else if (w->seen & (1u << i)) {
		config_error_at(c, at, "duplicate key");
		config_skip_node(c);
	} else {
		w->seen |= 1u << i;
		if (config_expect(c, w->f[i].type))
			w->f[i].fn(c, w->obj, w->f[i].off);
	}
	config_path_pop(c, old);
}

/* Parse the mapping at the current event with table F into OBJ; missing
 * required keys are reported at MISSING_AT. */
void config_parse_fields(struct config_ctx *c, const struct field *f,
			 size_t n, void *obj, struct mark missing_at)
{
	struct fields_walk w = { f, n, obj, 0 };
	size_t i;

	config_map_each(c, field_key, &w);
	for (i = 0; i < n && !c->stop; i++)
		if (f[i].required && !(w.seen & (1u << i)))
			config_error_at(c, missing_at,
					"missing required key \"%s\"",
					f[i].key);
}
