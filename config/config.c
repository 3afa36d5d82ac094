/* SPDX-License-Identifier: MIT */
/* config.c: the public entry points of config.h: load a file, parse a
 * buffer, questions about a loaded config, freeing.
 *
 * config_parse_buffer() owns one parse: it reserves room for an "out of
 * memory" message first (so that something is always said), runs the
 * walk with the schema (schema.c, walk.c), then the whole-file checks
 * (check.c), and hands either the config or the messages to the caller.
 * See internal.h for the map of the other files.
 */
#include "config/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int config_parse_buffer(const char *name, const char *buf, size_t len,
			struct config **out, struct config_errors *errs)
{
	bool had_msg = errs->msg != NULL;
	struct config_ctx *c;
	char **slot;
	size_t i;
	int rc = -1;

	*out = NULL;
	if (!name)
		name = "(config)";
	if (len > MAX_FILE_SIZE) {
		config_errs_add(errs, "%s: file too large", name);
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
		c->oom_text = config_fmt("%s: out of memory", name);
	if (!c || !c->oom_text) {
		free(c);
		config_errs_add(errs, "%s: out of memory", name); /* may fail */
		return -1;
	}
	c->name = name;
	c->buf = buf;
	c->len = len;
	c->cfg = calloc(1, sizeof(*c->cfg));
	if (c->cfg) {
		prov_pool_init(&c->cfg->provision.pool);
		c->cfg->provision.uid_base = CONFIG_DEFAULT_UID_BASE;
		c->cfg->provision.pool.uid_base = CONFIG_DEFAULT_UID_BASE;
		c->cfg->limits.conns = CONFIG_DEFAULT_LIMIT_CONNS;
		c->cfg->limits.rate = CONFIG_DEFAULT_LIMIT_RATE;
		c->cfg->limits.burst = CONFIG_DEFAULT_LIMIT_BURST;
		c->cfg->shutdown_grace_ms = CONFIG_DEFAULT_SHUTDOWN_GRACE_MS;
		c->cfg->control.mode = CONFIG_DEFAULT_CONTROL_MODE;
	}
	if (!c->cfg || !yaml_parser_initialize(&c->parser)) {
		free(c->cfg);
		c->cfg = NULL;
		config_oom(c);
		goto cleanup;
	}
	yaml_parser_set_input_string(&c->parser, (const unsigned char *)buf,
				     len);
	config_parse_document(c);
	if (!c->stop)
		config_finish(c);
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
	config_set_free(&c->svc_names);
	config_set_free(&c->ns_names);
	config_set_free(&c->prov_users);
	free(c->prov_control);
	config_free(c->cfg);
	if (rc)
		config_flush_msgs(c, errs);
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
	struct stat st;
	ssize_t n;
	int fd, rc = -1;

	*out = NULL;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer; anything
	 * but a regular file is refused before reading. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		config_errs_add(errs, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		config_errs_add(errs, "%s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		config_errs_add(errs, "%s: not a regular file", path);
		goto cleanup;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 64 * 1024;
			if (cap > MAX_FILE_SIZE + 1)
				cap = MAX_FILE_SIZE + 1;
			p = realloc(buf, cap);
			if (!p) {
				config_errs_add(errs, "%s: %s", path,
						strerror(ENOMEM));
				goto cleanup;
			}
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			config_errs_add(errs, "%s: %s", path, strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_FILE_SIZE) {
			config_errs_add(errs, "%s: file too large", path);
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
	       config_in_strv(s->namespaces, s->n_namespaces, name);
}

bool config_serves_ns(const struct config *cfg, const char *name)
{
	if (!config_valid_ns_name(name))
		return false;
	if (config_in_strv(cfg->namespaces, cfg->n_namespaces, name))
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

void config_free(struct config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_services; i++) {
		free(cfg->services[i].name);
		free(cfg->services[i].listen);
		config_free_strv(cfg->services[i].namespaces,
				 cfg->services[i].n_namespaces);
	}
	free(cfg->services);
	free(cfg->dns.servers);
	config_free_strv(cfg->namespaces, cfg->n_namespaces);
	free(cfg->path);
	free(cfg->netns_dir);
	free(cfg->user);
	free(cfg->ns_match);
	for (i = 0; i < cfg->provision.n_users; i++)
		free(cfg->provision.users[i].name);
	free(cfg->provision.users);
	free(cfg->provision.control);
	free(cfg->provision.hosts_file);
	free(cfg->provision.domain);
	free(cfg->control.path);
	free(cfg->control.group);
	free(cfg);
}

void config_errors_clear(struct config_errors *errs)
{
	if (!errs)
		return;
	config_free_strv(errs->msg, errs->n);
	errs->msg = NULL;
	errs->n = 0;
}
