/* SPDX-License-Identifier: MIT */
/* internal.h: what the files of config/ share, and nothing else includes.
 *
 * The loader is split along its seams:
 *   walk.c    YAML events -> a walk over mappings and sequences, with the
 *             key path and file:line:col of every message
 *   schema.c  the tables of keys and their handlers (h_*): what the file
 *             may say and where each value goes
 *   values.c  pure value parsers: durations, socket addresses, names,
 *             numbers, templates
 *   check.c   checks that need the whole file, defaults, and the checks
 *             offered to the engine after loading
 *   util.c    formatting, growing arrays, a string set
 *   diff.c    comparing two loaded configs, for reload (config.h)
 *   config.c  the public entry points of config.h
 * Everything here is pure: no libevent, no sockets, no logging, no globals.
 * Names with external linkage carry the config_ prefix.
 */
#ifndef NSRELAY_CONFIG_INTERNAL_H
#define NSRELAY_CONFIG_INTERNAL_H

#include "config/config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
	struct mark source_at;	/* source:, if given (line > 0) */
	struct mark protocol_at;	/* protocol:, likewise */
	struct mark proxy_at;		/* proxy_protocol: */
	struct mark check_at;		/* check: */
};

/* The state of one parse: the libyaml parser and its current event, the
 * config being filled, what the schema learns on the way, and the
 * messages collected so far. */
struct config_ctx {
	yaml_parser_t parser;
	yaml_event_t ev;	/* current event, valid if have_ev */
	bool have_ev;
	bool kind_said;		/* config_node_kind() reported on ev */
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
	struct mark control_at;		/* control.path, if given (line>0) */
	struct mark prov_control_at;	/* provision.control, if given */
	char *prov_control;		/* its value */
	bool rate_set, burst_set;	/* in limits: */
	struct mark burst_at;

	struct msg *msgs;
	size_t n_msgs;
	char path[PATH_SIZE];	/* key path of the node being looked at */
	size_t path_len;
};

/* ---- util.c ---------------------------------------------------------- */

/* A malloc'ed formatted string, or NULL. */
PRINTF(1, 0) char *config_vfmt(const char *fmt, va_list ap);
PRINTF(1, 2) char *config_fmt(const char *fmt, ...);

/* Room for N + 1 elements of SIZE in ARR, which holds N; capacity is
 * implied by N (4, 8, 16, ...).  Returns the array or NULL. */
void *config_grow(void *arr, size_t n, size_t size);

void config_free_strv(char **v, size_t n);	/* NULL is fine */
bool config_in_strv(char *const *v, size_t n, const char *s);

/* Index stored for KEY, or SIZE_MAX. */
size_t config_set_get(const struct strset *set, const char *key);
/* Add KEY (absent) -> IDX.  0, or -1 when out of memory. */
int config_set_put(struct strset *set, const char *key, size_t idx);
void config_set_free(struct strset *set);

/* ---- walk.c: messages, key paths, events ------------------------------ */

/* Where the current event starts. */
struct mark config_here(const struct config_ctx *c);

/* Report "NAME:LINE:COL: PATH: message" (no "PATH: " at the top).  Does
 * nothing once the parse has stopped. */
PRINTF(3, 4) void config_error_at(struct config_ctx *c, struct mark at,
				  const char *fmt, ...);

/* Out of memory: stop; the reserved message says so. */
void config_oom(struct config_ctx *c);

/* Append a formatted message to ERRS.  0, or -1 when out of memory. */
PRINTF(2, 3) int config_errs_add(struct config_errors *errs,
				 const char *fmt, ...);

/* Hand the collected messages to ERRS in file order, then "out of
 * memory" or "too many errors" if parsing stopped for that. */
void config_flush_msgs(struct config_ctx *c, struct config_errors *errs);

/* Append ".KEY" or "[IDX]" to the key path; each returns what
 * config_path_pop() needs to undo it. */
size_t config_path_push(struct config_ctx *c, const char *key);
size_t config_path_push_index(struct config_ctx *c, size_t idx);
void config_path_pop(struct config_ctx *c, size_t old);

/* Move to the next event.  0, or -1 once parsing must stop. */
int config_next(struct config_ctx *c);

/* Skip the node starting at the current event; leaves the current event
 * on its last event. */
void config_skip_node(struct config_ctx *c);

enum kind { K_SCALAR, K_SEQ, K_MAP, K_ALIAS };
enum ntype { N_SCALAR, N_SEQ, N_MAP, N_SEQ_OR_SCALAR };

/* Classify the node at the current event; anchors, aliases and explicit
 * tags are reported here. */
enum kind config_node_kind(struct config_ctx *c);

/* Is the node at the current event of type WANT?  If not, say so and
 * skip it. */
bool config_expect(struct config_ctx *c, enum ntype want);

/* The scalar at the current event, or NULL (reported) if unusable. */
const char *config_scalar(struct config_ctx *c);

typedef void key_fn(struct config_ctx *c, const char *key, struct mark at,
		    void *arg);
typedef void item_fn(struct config_ctx *c, void *arg);
typedef void field_fn(struct config_ctx *c, void *obj, size_t off);

/* Walk the mapping at the current event.  For each entry with a usable
 * scalar key, move to the value and call FN, which consumes it.  The
 * current event ends on MAPPING-END. */
void config_map_each(struct config_ctx *c, key_fn *fn, void *arg);

/* Walk the sequence at the current event, calling FN for each item with
 * "[i]" on the key path.  Returns the number of items. */
size_t config_seq_each(struct config_ctx *c, item_fn *fn, void *arg);

/* One key of a mapping described by a table. */
struct field {
	const char *key;
	enum ntype type;
	field_fn *fn;
	size_t off;		/* into the handler's object */
	bool required;
};

/* Parse the mapping at the current event with table F into OBJ; missing
 * required keys are reported at MISSING_AT. */
void config_parse_fields(struct config_ctx *c, const struct field *f,
			 size_t n, void *obj, struct mark missing_at);

/* ---- schema.c ---------------------------------------------------------- */

/* STREAM-START DOCUMENT-START mapping DOCUMENT-END STREAM-END, with the
 * top-level table. */
void config_parse_document(struct config_ctx *c);

/* ---- values.c ---------------------------------------------------------- */

/* Parse a duration; NULL, or why not (static, or written into WHY).  With
 * ZERO_OK, "0" and zero durations ("0s") are 0; else refused. */
const char *config_duration_why(const char *s, uint64_t *ms, bool zero_ok,
				char *why, size_t why_len);

/* Parse a control socket mode: 3 or 4 octal digits ("0660"), read and
 * write for the owner, nothing for others, no execute bits, no
 * set-id or sticky bits.  NULL, or why not (static). */
const char *config_mode_why(const char *s, unsigned *mode);

/* Why NAME is not a usable group name, or NULL (static). */
const char *config_group_problem(const char *name);

/* Why NAME is not a usable namespace name, or NULL. */
const char *config_ns_name_problem(const char *name);

bool config_valid_service_name(const char *s);

/* Why a provision template (WHICH: 'n' namespace, 'h' host interface,
 * 'p' namespace interface) could make an unsafe name, or NULL: a '/' or
 * (interfaces) ':' or white space, a name that could be "." or "..", an
 * interface name that is always longer than 15 bytes.  The % sequences are
 * checked by prov_pool_set_tmpl(). */
const char *config_tmpl_problem(char which, const char *tmpl);

/* An unsigned decimal integer below LIMIT.  0 or -EINVAL. */
int config_parse_uint(const char *v, unsigned long limit, unsigned long *out);

/* ---- check.c ----------------------------------------------------------- */

/* Checks and defaults that need the whole file. */
void config_finish(struct config_ctx *c);

#endif
