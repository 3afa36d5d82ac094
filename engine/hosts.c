/* SPDX-License-Identifier: MIT */
/* hosts: provisioned namespaces and the hosts file naming them.
 *
 * The file is for the host's nginx, dnsmasq or /etc/hosts includes:
 *   100.64.9.2 alice.users.example.org
 *   fd75:6272:7370:9::2 alice.users.example.org
 * It is written to PATH.tmp and renamed over PATH, so readers see either
 * the old or the new file, never half of one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/daemon.h"
#include "engine/hosts.h"
#include "engine/log.h"
#include "netns/provision.h"

struct provisioned {
	TAILQ_ENTRY(provisioned) entry;
	char *user;
	struct prov_spec spec;
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
	if (p)
		p->spec = *spec;
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
