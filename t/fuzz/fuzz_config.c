/* SPDX-License-Identifier: MIT */
/* fuzz_config: the config loader on arbitrary bytes.
 *
 * config_parse_buffer() must return either a config and no message, or no
 * config and at least one message naming the input; never crash, leak or
 * hang.  A config that loads is also put through what the engine asks of
 * it (namespace membership, listener count, user checks), compared with
 * itself as a reload would (no difference, nothing that needs a restart)
 * and freed.
 */
#include "config/config.h"
#include "t/fuzz/fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NAME	"fuzz.yaml"

static int uid_of(const char *name, uint32_t *uid, void *arg)
{
	(void)arg;
	if (!strcmp(name, "nobody"))
		return -ENOENT;
	*uid = (uint32_t)strlen(name) * 500;	/* some below uid_base */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors e = { NULL, 0 };
	struct config *cfg = NULL;
	struct config_diff d;
	int rc;

	rc = config_parse_buffer(NAME, (const char *)data, size, &cfg, &e);
	if (rc == 0) {
		if (!cfg || e.n)
			abort();
		for (size_t i = 0; i < cfg->n_services; i++)
			(void)config_service_in_ns(&cfg->services[i], "ns0");
		(void)config_serves_ns(cfg, "ns0");
		(void)config_listener_count(cfg, 7);
		(void)config_check_listeners(cfg, 3, 10, &e);
		if (config_check_users(cfg, uid_of, NULL, &e) < 0)
			abort();
		for (size_t i = 0; i < cfg->provision.n_users; i++)
			(void)config_provision_index(cfg,
						     cfg->provision.users[i].name);
		if (config_fixed_key(cfg, cfg))
			abort();
		for (size_t i = 0; i < cfg->n_services; i++)
			if (!config_service_equal(&cfg->services[i],
						  &cfg->services[i]))
				abort();
		if (config_diff(cfg, cfg, &d) == 0 &&
		    (d.n_services_added || d.n_services_removed ||
		     d.n_services_changed || d.n_namespaces_added ||
		     d.n_namespaces_removed || d.n_users_added ||
		     d.n_users_removed))
			abort();
		config_diff_free(&d);
		if (cfg->limits.rate && !cfg->limits.burst)
			abort();
		if ((cfg->control.mode & 0007) || !cfg->control.path)
			abort();
	} else {
		if (rc != -1 || cfg || !e.n)
			abort();
		for (size_t i = 0; i < e.n; i++)
			if (strncmp(e.msg[i], NAME ":", sizeof(NAME)))
				abort();
	}
	config_free(cfg);
	config_errors_clear(&e);
	return 0;
}
