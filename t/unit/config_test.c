/* SPDX-License-Identifier: MIT */
/* config_test: unit tests of config/ (TAP), driven by the t/config/ table.
 *
 * t/config/valid/NAME.yaml must parse; t/config/invalid/NAME.yaml must fail
 * with exactly the lines of NAME.err, in order ("NAME.yaml" is the name
 * given to the parser, so messages do not depend on where the tree is).
 */
#include "config/config.h"
#include "t/unit/tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef CONFIG_CASES
#define CONFIG_CASES "t/config"
#endif

#define S(x)	((x) * 1000ULL)
#define MIN(x)	((x) * 60 * 1000ULL)
#define H(x)	((x) * 60 * 60 * 1000ULL)

/* The whole file at PATH (NUL-terminated), or NULL. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (cap - n < 4096) {
			char *p = realloc(buf, cap += 65536);

			if (!p) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void show_errors(const struct config_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		diag("  %s", e->msg[i]);
}

/* Parse DIR/FILE with FILE as its name. */
static int parse_case(const char *dir, const char *file, struct config **cfg,
		      struct config_errors *e)
{
	char path[4096];
	size_t len;
	char *buf;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	buf = slurp(path, &len);
	if (!buf) {
		diag("cannot read %s: %s", path, strerror(errno));
		*cfg = NULL;
		return -2;
	}
	rc = config_parse_buffer(file, buf, len, cfg, e);
	free(buf);
	return rc;
}

static int yaml_only(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && !strcmp(d->d_name + n - 5, ".yaml");
}

/* ---- direct checks of the value parsers ------------------------------ */

static void test_durations(void)
{
	static const struct {
		const char *s;
		long long ms;	/* -1: must fail */
	} cases[] = {
		{ "250ms", 250 }, { "5s", 5000 }, { "1m", 60000 },
		{ "1h30m", H(1) + MIN(30) }, { "2d", H(48) },
		{ "1d2h3m4s5ms", H(26) + MIN(3) + S(4) + 5 },
		{ "1ms", 1 }, { "30d", H(720) }, { "0s1ms", 1 },
		{ "007s", 7000 }, { "90m", MIN(90) },
		{ "29d23h59m59s999ms", H(720) - 1 },
		{ "", -1 }, { "5", -1 }, { "s", -1 }, { "-5s", -1 },
		{ "+5s", -1 }, { " 5s", -1 }, { "5s ", -1 }, { "5 s", -1 },
		{ "5x", -1 }, { "5S", -1 }, { "5sec", -1 }, { "1h30", -1 },
		{ "1.5s", -1 }, { "0s", -1 }, { "0ms0d", -1 }, { "31d", -1 },
		{ "30d1ms", -1 }, { "720h1ms", -1 },
		{ "18446744073709551615ms", -1 },
		{ "18446744073709551616ms", -1 },
		{ "99999999999999999999999999d", -1 },
		{ "5000000000000000000d", -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 12345;
		int rc = config_parse_duration(cases[i].s, &ms);

		if (cases[i].ms < 0)
			ok(rc == -EINVAL && ms == 12345,
			   "duration \"%s\" is refused", cases[i].s);
		else
			ok(rc == 0 && ms == (uint64_t)cases[i].ms,
			   "duration \"%s\" is %lld ms", cases[i].s,
			   cases[i].ms);
	}
}

static void test_sockaddrs(void)
{
	static const struct {
		const char *s;
		bool unix_ok;
		const char *want;	/* canonical text, or NULL */
		const char *why;	/* reason when refused */
	} cases[] = {
		{ "127.0.0.1:3306", false, "127.0.0.1:3306", NULL },
		{ "0.0.0.0:1", false, "0.0.0.0:1", NULL },
		{ "10.1.2.3:65535", false, "10.1.2.3:65535", NULL },
		{ "127.0.0.1:03306", false, "127.0.0.1:3306", NULL },
		{ "[::1]:3306", false, "[::1]:3306", NULL },
		{ "[0:0:0:0:0:0:0:1]:25", false, "[::1]:25", NULL },
		{ "[2001:DB8::A]:443", false, "[2001:db8::a]:443", NULL },
		{ "[::ffff:127.0.0.1]:80", false, "[::ffff:127.0.0.1]:80",
		  NULL },
		{ "unix:/run/x.sock", true, "unix:/run/x.sock", NULL },
		{ "/run/x.sock", true, "unix:/run/x.sock", NULL },
		{ "127.0.0.1:0", false, NULL, "port 0 out of range" },
		{ "127.0.0.1:65536", false, NULL, "port 65536 out of range" },
		{ "127.0.0.1:70000", false, NULL, "port 70000 out of range" },
		{ "127.0.0.1:99999999999999999999", false, NULL,
		  "port 99999999999999999999 out of range" },
		{ "[::1]:0", false, NULL, "port 0 out of range" },
		{ "127.0.0.1:abc", false, NULL,
		  "port must be a decimal number" },
		{ "127.0.0.1:+80", false, NULL,
		  "port must be a decimal number" },
		{ "127.0.0.1:0x50", false, NULL,
		  "port must be a decimal number" },
		{ "127.0.0.1: 80", false, NULL,
		  "port must be a decimal number" },
		{ "127.0.0.1", false, NULL, "missing port" },
		{ "127.0.0.1:", false, NULL, "missing port" },
		{ "[::1]", false, NULL, "missing port" },
		{ "[::1]:", false, NULL, "missing port" },
		{ "[::1]3306", false, NULL,
		  "expected ':' and a port after ']'" },
		{ "[::1:3306", false, NULL,
		  "missing ']' after the IPv6 address" },
		{ "[127.0.0.1]:80", false, NULL, "not an IPv6 address" },
		{ "localhost:3306", false, NULL,
		  "not an IP address (host names are not supported)" },
		{ "localhost", false, NULL, "missing port" },
		{ "1.2.3:80", false, NULL,
		  "not an IP address (host names are not supported)" },
		{ "1.2.3.4.5:80", false, NULL,
		  "not an IP address (host names are not supported)" },
		{ "256.1.1.1:80", false, NULL,
		  "not an IP address (host names are not supported)" },
		{ ":80", false, NULL, "missing IP address" },
		{ "", false, NULL, "empty address" },
		{ "::1", false, NULL,
		  "IPv6 addresses need brackets: [::1]:3306" },
		{ "::1:3306", false, NULL,
		  "IPv6 addresses need brackets: [::1]:3306" },
		{ "fe80::1:22", false, NULL,
		  "IPv6 addresses need brackets: [::1]:3306" },
		{ "a:b:c", false, NULL,
		  "not an IP address (host names are not supported)" },
		{ "[fe80::1%eth0]:22", false, NULL, "not an IPv6 address" },
		{ "unix:/run/x.sock", false, NULL,
		  "unix sockets are not allowed here" },
		{ "/run/x.sock", false, NULL,
		  "unix sockets are not allowed here" },
		{ "unix:run/x.sock", true, NULL,
		  "unix socket path must be absolute" },
		{ "unix:", true, NULL, "unix socket path must be absolute" },
		{ "run/x.sock", true, NULL, "missing port" },
	};
	struct config_sockaddr sa;
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = "untouched";
		rc = config_parse_sockaddr(cases[i].s, cases[i].unix_ok, &sa,
					   &why);
		if (cases[i].want) {
			ok(rc == 0, "address \"%s\" parses", cases[i].s);
			is_str(sa.text, cases[i].want, "  as %s",
			       cases[i].want);
		} else {
			ok(rc == -EINVAL, "address \"%s\" is refused",
			   cases[i].s);
			is_str(rc ? why : NULL, cases[i].why, "  because %s",
			       cases[i].why);
		}
	}

	/* The binary forms. */
	config_parse_sockaddr("192.0.2.7:3306", false, &sa, &why);
	{
		const struct sockaddr_in *sin = (const void *)&sa.sa;

		ok(sa.sa.ss_family == AF_INET && sa.len == sizeof(*sin) &&
		   ntohs(sin->sin_port) == 3306 &&
		   ntohl(sin->sin_addr.s_addr) == 0xc0000207,
		   "IPv4 sockaddr in network order");
	}
	config_parse_sockaddr("[::1]:25", false, &sa, &why);
	{
		const struct sockaddr_in6 *sin6 = (const void *)&sa.sa;

		ok(sa.sa.ss_family == AF_INET6 && sa.len == sizeof(*sin6) &&
		   ntohs(sin6->sin6_port) == 25 &&
		   IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr),
		   "IPv6 sockaddr in network order");
	}
	config_parse_sockaddr("unix:/run/m.sock", true, &sa, &why);
	{
		const struct sockaddr_un *sun = (const void *)&sa.sa;

		ok(sa.sa.ss_family == AF_UNIX &&
		   !strcmp(sun->sun_path, "/run/m.sock") &&
		   sa.len == offsetof(struct sockaddr_un, sun_path) + 12,
		   "unix sockaddr with its length");
	}

	/* sun_path is 108 bytes with its NUL: 107 fit, 108 do not. */
	{
		char path[200];

		memset(path, 'x', sizeof(path));
		path[0] = '/';
		path[107] = '\0';
		ok(config_parse_sockaddr(path, true, &sa, &why) == 0 &&
		   sa.len == sizeof(struct sockaddr_un),
		   "unix path of 107 bytes fits");
		path[107] = 'x';
		path[108] = '\0';
		rc = config_parse_sockaddr(path, true, &sa, &why);
		ok(rc == -EINVAL, "unix path of 108 bytes is refused");
		is_str(rc ? why : NULL, "unix socket path too long",
		       "  because it is too long");
	}
}

static void test_ns_names(void)
{
	char name[300];

	ok(config_valid_ns_name("alice"), "ns name alice is fine");
	ok(config_valid_ns_name("a.b-c_d"), "ns name a.b-c_d is fine");
	ok(config_valid_ns_name("..."), "ns name ... is fine");
	ok(!config_valid_ns_name(""), "empty ns name is refused");
	ok(!config_valid_ns_name("."), "ns name . is refused");
	ok(!config_valid_ns_name(".."), "ns name .. is refused");
	ok(!config_valid_ns_name("a/b"), "ns name a/b is refused");
	ok(!config_valid_ns_name("/"), "ns name / is refused");
	ok(!config_valid_ns_name(NULL), "NULL ns name is refused");
	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	ok(config_valid_ns_name(name), "ns name of 255 bytes is fine");
	name[255] = 'n';
	name[256] = '\0';
	ok(!config_valid_ns_name(name), "ns name of 256 bytes is refused");
}

/* ---- the table of files ---------------------------------------------- */

static const struct config_service *find_service(const struct config *cfg,
						  const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_services; i++)
		if (!strcmp(cfg->services[i].name, name))
			return &cfg->services[i];
	return NULL;
}

static void check_minimal(const struct config *cfg)
{
	const struct config_service *s = find_service(cfg, "echo");

	is_str(cfg->user, CONFIG_DEFAULT_USER, "minimal: default user");
	is_str(cfg->netns_dir, "/run/netns", "minimal: default netns dir");
	ok(cfg->ns_all && !cfg->n_namespaces, "minimal: every namespace");
	is_int(cfg->retry_max_ms, 60000, "minimal: default bind_retry_max");
	is_str(cfg->path, "minimal.yaml", "minimal: path kept");
	if (!ok(s && s->n_listen == 1, "minimal: one listen address"))
		return;
	is_str(s->listen[0].text, "127.0.0.1:7", "minimal: listen text");
	is_int(s->listen[0].line * 100 + s->listen[0].col, 313,
	       "minimal: listen at 3:13");
	is_int(s->line * 100 + s->col, 203, "minimal: service at 2:3");
	is_str(s->upstream.text, "127.0.0.1:7007", "minimal: upstream");
	ok(s->n_upstreams == 1 && !strcmp(s->upstreams[0].text,
					  "127.0.0.1:7007"),
	   "minimal: a string is a list of one server");
	ok(!cfg->dns.n_servers && cfg->dns.refresh_ms == 30000,
	   "minimal: dns from resolv.conf, refreshed every 30 s at most");
	ok(s->balance == CONFIG_BALANCE_FIRST &&
	   s->check.protocol == CONFIG_CHECK_NONE &&
	   s->check.interval_ms == 2000 && s->check.timeout_ms == 1000 &&
	   s->check.rise == 2 && s->check.fall == 3,
	   "minimal: balance first, no active check, default timings");
	is_int(s->connect_timeout_ms, 5000, "minimal: default connect");
	is_int(s->idle_timeout_ms, H(1), "minimal: default idle");
	is_int(s->fin_timeout_ms, MIN(1), "minimal: default fin");
	ok(!s->n_namespaces, "minimal: service goes everywhere");
	is_int(cfg->limits.conns, 0, "minimal: no fixed connection cap");
	is_int(cfg->limits.rate, 0, "minimal: no fixed rate");
	is_int(cfg->limits.burst, 0, "minimal: so no burst");
	is_int(s->limits.conns, 0, "minimal: no service limit");
	is_int(cfg->shutdown_grace_ms, 5000, "minimal: default grace 5s");
	is_str(cfg->control.path, CONFIG_DEFAULT_CONTROL,
	       "minimal: default control path");
	ok(!cfg->control.group, "minimal: no control group");
	is_int(cfg->control.mode, 0600, "minimal: control mode 0600");
	ok(!cfg->metrics.enabled, "minimal: no metrics");
	ok(!cfg->provision.enabled && !cfg->provision.control,
	   "minimal: no provisioning, no provision.control");
	ok(config_serves_ns(cfg, "anything"), "minimal: serves any name");
	ok(!config_serves_ns(cfg, ".."), "minimal: but not ..");
}

static void check_provision(const struct config *cfg)
{
	const struct config_provision *p = &cfg->provision;

	ok(config_serves_ns(cfg, "u-alice"), "provision: glob matches u-*");
	ok(!config_serves_ns(cfg, "alice"), "provision: glob excludes alice");
	ok(p->enabled, "provision: enabled");
	if (!ok(p->n_users == 3, "provision: three users"))
		return;
	ok(!strcmp(p->users[0].name, "alice") && p->users[0].index == -1,
	   "provision: scalar user, index from uid");
	ok(!strcmp(p->users[1].name, "bob") && p->users[1].index == 7,
	   "provision: flow mapping user with index");
	is_int(config_provision_index(cfg, "bob"), 7, "provision: bob index");
	is_int(config_provision_index(cfg, "dave"), -1,
	       "provision: unknown user index -1");
	is_int(p->uid_base, 2000, "provision: uid_base");
	is_str(p->control, "/run/nsrelay/ctl.sock", "provision: control");
	is_str(cfg->control.path, "/run/nsrelay/ctl.sock",
	       "provision: the old key provision.control sets control.path");
	is_int(p->removed, CONFIG_REMOVED_KEEP, "provision: removed: keep");
	is_str(p->domain, "users.example.org", "provision: domain");
	/* the pool the provisioner gets: what the file says */
	is_int(p->pool.uid_base, 2000, "provision: pool uid_base");
	is_int(p->pool.v4_plen, 12, "provision: pool IPv4 prefix");
	is_int(ntohl(p->pool.v4_base.s_addr), 0x64500000,
	       "provision: pool IPv4 base");
	ok(p->pool.v6_base.s6_addr[0] == 0xfd &&
	   p->pool.v6_base.s6_addr[3] == 1, "provision: pool IPv6 base");
	is_str(p->pool.ns_tmpl, "%u_ns", "provision: pool namespace tmpl");
	is_str(p->pool.host_tmpl, "veth_%U_out", "provision: pool host tmpl");
	is_str(p->pool.peer_tmpl, "veth_%U_in", "provision: pool peer tmpl");
}

static void check_full(const struct config *cfg)
{
	const struct config_service *my = find_service(cfg, "mysql");
	const struct config_service *smtp = find_service(cfg, "smtp");
	const struct config_service *imap = find_service(cfg, "imap");
	const struct sockaddr_un *sun;

	is_str(cfg->user, "relay", "full: user");
	ok(!cfg->provision.enabled && !cfg->provision.control,
	   "full: no provisioning without the section");
	is_str(cfg->netns_dir, "/var/run/netns", "full: netns dir");
	ok(!cfg->ns_all, "full: names given, so not all");
	ok(cfg->n_namespaces == 3 && !strcmp(cfg->namespaces[0], "alice") &&
	   !strcmp(cfg->namespaces[2], "carol"), "full: names in order");
	is_int(cfg->retry_max_ms, S(90), "full: bind_retry_max 1m30s");
	ok(config_serves_ns(cfg, "bob"), "full: serves bob");
	ok(!config_serves_ns(cfg, "dave"), "full: does not serve dave");
	if (!ok(cfg->n_services == 3 && my && smtp && imap,
		"full: three services"))
		return;
	ok(cfg->services[0].name == my->name &&
	   cfg->services[2].name == imap->name, "full: services in order");

	is_int(my->n_listen, 2, "full: mysql listens twice");
	is_str(my->listen[1].text, "[::1]:3306", "full: mysql [::1]:3306");
	sun = (const void *)&my->upstream.sa;
	ok(my->upstream.sa.ss_family == AF_UNIX &&
	   !strcmp(sun->sun_path, "/run/mysqld/mysqld.sock"),
	   "full: mysql upstream unix path");
	is_int(my->connect_timeout_ms, S(2), "full: mysql connect from "
	       "defaults written later");
	is_int(my->idle_timeout_ms, H(8), "full: mysql idle overrides");
	is_int(my->fin_timeout_ms, S(45), "full: mysql fin from defaults");
	ok(my->n_namespaces == 1 && !strcmp(my->namespaces[0], "alice"),
	   "full: mysql only in alice");
	ok(config_service_in_ns(my, "alice") &&
	   !config_service_in_ns(my, "bob"), "full: mysql in alice only");

	is_str(smtp->listen[0].text, "127.0.0.1:25", "full: smtp block list");
	is_int(smtp->listen[1].line, 18, "full: smtp listen[1] line");
	is_int(smtp->connect_timeout_ms, 250, "full: smtp connect 250ms");
	is_int(smtp->idle_timeout_ms, H(2), "full: smtp idle from defaults");
	ok(smtp->n_namespaces == 2 && config_service_in_ns(smtp, "carol"),
	   "full: smtp in bob and carol");

	ok(imap->n_listen == 1 && !strcmp(imap->listen[0].text, "[::1]:143"),
	   "full: imap single scalar listen, canonical");
	is_str(imap->upstream.text, "unix:/run/dovecot/imap.sock",
	       "full: bare path upstream is unix");
	is_int(imap->fin_timeout_ms, H(1) + MIN(30), "full: imap fin 1h30m");
	ok(!imap->n_namespaces && config_service_in_ns(imap, "anyone"),
	   "full: imap everywhere");
}

static void check_flow(const struct config *cfg)
{
	const struct config_service *s = find_service(cfg, "smtp");

	is_str(cfg->user, "mail", "flow: user");
	ok(cfg->ns_all && cfg->n_namespaces == 1, "flow: all plus names");
	ok(config_serves_ns(cfg, "zed"), "flow: all serves unlisted names");
	ok(s && s->n_namespaces == 1 && !strcmp(s->namespaces[0], "zed"),
	   "flow: per-service name need not be listed when all");
}

static void check_disjoint(const struct config *cfg)
{
	ok(!cfg->ns_all, "disjoint: all: off");
	is_int(cfg->n_services, 3, "disjoint: three services");
}

static void check_document(const struct config *cfg)
{
	const struct config_service *s = find_service(cfg, "web");

	ok(s && s->connect_timeout_ms == H(24) &&
	   s->idle_timeout_ms == 30ULL * H(24), "document: 1d and 30d");
}

static void check_limits_control(const struct config *cfg)
{
	const struct config_service *db = find_service(cfg, "db");
	const struct config_service *web = find_service(cfg, "web");

	is_int(cfg->shutdown_grace_ms, 0, "limits-control: grace 0");
	is_int(cfg->limits.conns, 1000, "limits-control: 1000 connections");
	is_int(cfg->limits.rate, 50, "limits-control: 50 a second");
	is_int(cfg->limits.burst, 100, "limits-control: burst 2 x rate");
	ok(db && db->limits.conns == 16 && !db->limits.rate &&
	   !db->limits.burst, "limits-control: db at most 16 per namespace");
	ok(web && web->limits.conns == 0, "limits-control: web no limit");
	is_str(cfg->control.path, "/run/nsrelay/admin.sock",
	       "limits-control: control.path");
	is_str(cfg->control.group, "nsrelay-admin",
	       "limits-control: control.group");
	is_int(cfg->control.mode, 0660, "limits-control: control.mode");
	is_str(cfg->provision.control, "/run/nsrelay/admin.sock",
	       "limits-control: provision.control mirrors control.path");
	ok(cfg->metrics.enabled, "limits-control: metrics on");
	is_str(cfg->metrics.listen.text, "[::1]:9543",
	       "limits-control: metrics address");
	ok(cfg->metrics.listen.sa.ss_family == AF_INET6 &&
	   cfg->metrics.listen.line == 5 && cfg->metrics.listen.col == 20,
	   "limits-control: metrics IPv6 at 5:20");
	is_int(cfg->provision.removed, CONFIG_REMOVED_DEPROVISION,
	       "limits-control: removed: deprovision");
}

static void check_limits_off(const struct config *cfg)
{
	is_int(cfg->shutdown_grace_ms, S(90), "limits-off: grace 1m30s");
	ok(cfg->limits.conns == 0 && cfg->limits.rate == 200 &&
	   cfg->limits.burst == 10, "limits-off: 0 live, 200/s, burst 10");
	is_int(cfg->control.mode, 0640, "limits-off: mode 640 is 0640");
	is_str(cfg->control.path, CONFIG_DEFAULT_CONTROL,
	       "limits-off: default control path");
	is_str(cfg->provision.control, CONFIG_DEFAULT_CONTROL,
	       "limits-off: provision.control mirrors the default");
	ok(cfg->metrics.enabled && cfg->metrics.listen.sa.ss_family == AF_INET,
	   "limits-off: metrics on IPv4");
	is_int(cfg->provision.removed, CONFIG_REMOVED_KEEP,
	       "limits-off: removed: keep");
}

static void check_limits_zero(const struct config *cfg)
{
	ok(cfg->limits.conns == 0 && cfg->limits.rate == 0 &&
	   cfg->limits.burst == 0, "limits-zero: no rate, so no burst");
	is_int(cfg->shutdown_grace_ms, 0, "limits-zero: grace 0s");
}

static void check_upstreams(const struct config *cfg)
{
	const struct config_service *m = &cfg->services[0];
	const struct config_service *s = &cfg->services[1];
	const struct config_service *i = &cfg->services[2];
	const struct config_service *n;

	is_int(m->n_upstreams, 3, "upstreams: mysql has 3 servers");
	is_str(m->upstreams[1].text, "[2001:db8::2]:3306",
	       "upstreams: the second in canonical form");
	is_str(m->upstream.text, "192.0.2.1:3306",
	       "upstreams: upstream is the first");
	ok(m->upstreams[2].sa.ss_family == AF_UNIX, "upstreams: a unix one");
	ok(m->check.protocol == CONFIG_CHECK_MYSQL &&
	   m->check.interval_ms == 2000 && m->check.timeout_ms == 1000 &&
	   m->check.rise == 2 && m->check.fall == 3, "upstreams: mysql check");
	ok(s->balance == CONFIG_BALANCE_ROUNDROBIN && s->n_upstreams == 2,
	   "upstreams: smtp round robin over 2");
	ok(s->check.protocol == CONFIG_CHECK_SMTP &&
	   s->check.interval_ms == 500 && s->check.timeout_ms == 500,
	   "upstreams: a timeout never longer than a short interval");
	ok(i->balance == CONFIG_BALANCE_LEASTCONN &&
	   i->check.protocol == CONFIG_CHECK_TCP &&
	   i->check.interval_ms == 2000 && i->check.timeout_ms == 1000 &&
	   i->check.rise == 2 && i->check.fall == 3,
	   "upstreams: check: {} is tcp with the defaults");
	is_str(config_check_name(i->check.protocol), "tcp",
	       "upstreams: the name of a protocol");
	is_str(config_balance_name(i->balance), "leastconn",
	       "upstreams: the name of a balance");
	ok(m->proxy_protocol == CONFIG_PROXY_OFF &&
	   s->proxy_protocol == CONFIG_PROXY_V1 &&
	   i->proxy_protocol == CONFIG_PROXY_V2,
	   "upstreams: proxy_protocol off by default, v1, v2");
	is_str(config_proxy_name(i->proxy_protocol), "v2",
	       "upstreams: the name of a proxy_protocol");
	ok(s->source == CONFIG_SOURCE_NAMESPACE &&
	   m->source == CONFIG_SOURCE_DEFAULT,
	   "upstreams: source: namespace, default by default");
	is_str(config_source_name(s->source), "namespace",
	       "upstreams: the name of a source");
	n = &cfg->services[3];
	ok(n->n_upstreams == 3 && n->upstreams[0].sa.ss_family == AF_UNSPEC &&
	   n->upstreams[0].len == 0 && n->upstreams[0].port == 3306,
	   "upstreams: a host name and its port, left for the engine");
	is_str(n->upstreams[0].text, "db1.example.org:3306",
	       "upstreams: a host name in lower case");
	ok(n->upstreams[2].sa.ss_family == AF_INET,
	   "upstreams: names and addresses in one list");
	ok(cfg->dns.n_servers == 2 && cfg->dns.refresh_ms == 10000 &&
	   cfg->dns.servers[1].sa.ss_family == AF_INET6,
	   "upstreams: dns servers and refresh");
}

static void check_udp(const struct config *cfg)
{
	const struct config_service *d = &cfg->services[0];
	const struct config_service *t = &cfg->services[1];
	const struct config_service *l = &cfg->services[2];

	ok(d->protocol == CONFIG_PROTO_UDP && t->protocol == CONFIG_PROTO_TCP,
	   "udp: protocol udp and tcp on the same addresses");
	is_str(config_protocol_name(d->protocol), "udp",
	       "udp: the name of a protocol");
	ok(d->idle_timeout_ms == CONFIG_DEFAULT_UDP_IDLE_MS &&
	   t->idle_timeout_ms == 2 * 3600 * 1000ULL,
	   "udp: a flow's idle timeout is 30 s, defaults: is for streams");
	ok(l->idle_timeout_ms == 5000 &&
	   l->upstreams[0].sa.ss_family == AF_UNIX,
	   "udp: its own idle timeout, a unix datagram upstream");
}

static const struct {
	const char *file;
	void (*check)(const struct config *cfg);
} valid_checks[] = {
	{ "udp.yaml", check_udp },
	{ "upstreams.yaml", check_upstreams },
	{ "limits-control.yaml", check_limits_control },
	{ "limits-off.yaml", check_limits_off },
	{ "limits-zero.yaml", check_limits_zero },
	{ "provision.yaml", check_provision },
	{ "minimal.yaml", check_minimal },
	{ "full.yaml", check_full },
	{ "flow.yaml", check_flow },
	{ "disjoint.yaml", check_disjoint },
	{ "document.yaml", check_document },
};

static void test_valid(void)
{
	const char *dir = CONFIG_CASES "/valid";
	struct dirent **list;
	int i, n;
	size_t j;

	n = scandir(dir, &list, yaml_only, alphasort);
	if (!ok(n > 0, "found valid cases in %s", dir))
		return;
	for (i = 0; i < n; i++) {
		struct config_errors e = { NULL, 0 };
		struct config *cfg;
		int rc = parse_case(dir, list[i]->d_name, &cfg, &e);

		if (!ok(rc == 0 && cfg && !e.n, "valid/%s parses",
			list[i]->d_name))
			show_errors(&e);
		for (j = 0; cfg && j < sizeof(valid_checks) /
				      sizeof(valid_checks[0]); j++)
			if (!strcmp(valid_checks[j].file, list[i]->d_name))
				valid_checks[j].check(cfg);
		config_free(cfg);
		config_errors_clear(&e);
		free(list[i]);
	}
	free(list);
}

static void test_invalid(void)
{
	const char *dir = CONFIG_CASES "/invalid";
	struct dirent **list;
	int i, n;

	n = scandir(dir, &list, yaml_only, alphasort);
	if (!ok(n > 0, "found invalid cases in %s", dir))
		return;
	for (i = 0; i < n; i++) {
		const char *file = list[i]->d_name;
		struct config_errors e = { NULL, 0 };
		struct config *cfg = (struct config *)&e;	/* poison */
		char path[4096], *want, *line, *save = NULL;
		size_t len, k = 0;
		int rc;

		snprintf(path, sizeof(path), "%s/%.*s.err", dir,
			 (int)(strlen(file) - 5), file);
		want = slurp(path, &len);
		rc = parse_case(dir, file, &cfg, &e);
		ok(rc == -1 && !cfg && e.n > 0, "invalid/%s is refused", file);
		config_free(cfg);	/* in case it was not */
		if (!ok(want != NULL, "  %s exists", path)) {
			show_errors(&e);
			goto next;
		}
		for (line = strtok_r(want, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save), k++)
			is_str(k < e.n ? e.msg[k] : NULL, line,
			       "  message %zu", k + 1);
		if (!is_int(e.n, k, "  exactly %zu messages", k))
			show_errors(&e);
next:
		free(want);
		config_errors_clear(&e);
		free(list[i]);
	}
	free(list);
}

/* ---- buffers the table cannot hold ----------------------------------- */

/* Parse BUF as "buf.yaml"; return the messages joined by newlines. */
static char *parse_str(const char *buf, size_t len, int *rc, size_t *n)
{
	struct config_errors e = { NULL, 0 };
	struct config *cfg;
	size_t i, total = 1;
	char *all;

	*rc = config_parse_buffer("buf.yaml", buf, len, &cfg, &e);
	config_free(cfg);
	*n = e.n;
	for (i = 0; i < e.n; i++)
		total += strlen(e.msg[i]) + 1;
	all = calloc(1, total);
	for (i = 0; all && i < e.n; i++) {
		strcat(all, e.msg[i]);
		if (i + 1 < e.n)
			strcat(all, "\n");
	}
	config_errors_clear(&e);
	return all;
}

static const char svc[] =
	"services:\n  s:\n    listen: 127.0.0.1:1\n    upstream: 127.0.0.1:2\n";

static void test_buffers(void)
{
	static const char nul[] = "user: nsr\0elay\n";
	char *buf, *msgs;
	size_t n, i, len;
	int rc;

	msgs = parse_str(nul, sizeof(nul) - 1, &rc, &n);
	is_str(msgs, "buf.yaml:1:10: syntax error: control characters are "
	       "not allowed", "a NUL byte is a syntax error");
	ok(rc == -1 && n == 1, "  and only that");
	free(msgs);

	/* A scalar longer than 4096 bytes. */
	buf = malloc(8192);
	len = (size_t)sprintf(buf, "user: ");
	memset(buf + len, 'u', 4097);
	len += 4097;
	len += (size_t)sprintf(buf + len, "\n%s", svc);
	msgs = parse_str(buf, len, &rc, &n);
	is_str(msgs, "buf.yaml:1:7: user: longer than 4096 bytes",
	       "a 4097-byte scalar is refused");
	free(msgs);
	buf[6 + 4096] = ' ';	/* 4096 bytes and a trailing blank */
	msgs = parse_str(buf, len, &rc, &n);
	ok(rc == 0 && n == 0, "a 4096-byte scalar is fine");
	free(msgs);
	free(buf);

	/* Deep nesting, under an unknown key and where a scalar belongs:
	 * skipped up to 64 levels, then the parse stops (libyaml is
	 * quadratic in the depth). */
	buf = malloc(2 * 200000 + 256);
	for (i = 0; i < 3; i++) {
		static const size_t depth[] = { 64, 65, 200000 };
		static const char *const want[] = {
			"buf.yaml:5:1: deep: unknown key",
			"buf.yaml:5:1: deep: unknown key\n"
			"buf.yaml:5:71: deep: nested more than 64 levels deep",
			"buf.yaml:5:1: deep: unknown key\n"
			"buf.yaml:5:71: deep: nested more than 64 levels deep",
		};

		n = (size_t)sprintf(buf, "%sdeep: ", svc);
		memset(buf + n, '[', depth[i]);
		memset(buf + n + depth[i], ']', depth[i]);
		n += 2 * depth[i];
		buf[n++] = '\n';
		msgs = parse_str(buf, n, &rc, &len);
		is_str(msgs, want[i], "%zu levels under an unknown key",
		       depth[i]);
		free(msgs);
	}
	n = (size_t)sprintf(buf, "%s    idle_timeout: ", svc);
	memset(buf + n, '[', 200000);
	memset(buf + n + 200000, ']', 200000);
	n += 2 * 200000;
	buf[n++] = '\n';
	msgs = parse_str(buf, n, &rc, &i);
	is_str(msgs, "buf.yaml:5:19: services.s.idle_timeout: expected a "
	       "scalar\nbuf.yaml:5:83: services.s.idle_timeout: nested more "
	       "than 64 levels deep", "deep nesting for a scalar is refused");
	free(msgs);
	free(buf);

	/* Error cap: 150 bad keys give 99 messages and "too many". */
	buf = malloc(150 * 16 + 256);
	n = (size_t)sprintf(buf, "%s", svc);
	for (i = 0; i < 150; i++)
		n += (size_t)sprintf(buf + n, "bad%zu: 1\n", i);
	msgs = parse_str(buf, n, &rc, &i);
	ok(rc == -1 && i == 100, "at most 100 messages (got %zu)", i);
	ok(msgs && strstr(msgs, "buf.yaml:103:1: bad98: unknown key\n"
			  "buf.yaml: too many errors, giving up") &&
	   !strstr(msgs, "bad99"), "the last one says so");
	free(msgs);
	free(buf);

	/* Anchors on the top mapping, keys that are not scalars. */
	msgs = parse_str("&top\nservices: {}\n", 18, &rc, &n);
	is_str(msgs, "buf.yaml:1:1: aliases are not supported\n"
	       "buf.yaml:2:11: services: at least one service is required",
	       "anchor on the top-level mapping");
	free(msgs);
	msgs = parse_str("? [a]\n: b\n", 10, &rc, &n);
	is_str(msgs, "buf.yaml:1:1: missing required key \"services\"\n"
	       "buf.yaml:1:3: keys must be scalars",
	       "a sequence as a key");
	free(msgs);
}


/* ---- the keys of limits:, shutdown_grace, control:, metrics: --------- */

/* Parse SVC plus YAML; the first message, or "ok" (and *CFG kept when CFG
 * is not NULL). */
static char *parse_with(const char *yaml, struct config **cfg)
{
	struct config_errors e = { NULL, 0 };
	struct config *c;
	char buf[4096], *r;

	snprintf(buf, sizeof(buf), "%s%s", svc, yaml);
	config_parse_buffer("buf.yaml", buf, strlen(buf), &c, &e);
	r = strdup(e.n ? e.msg[0] : "ok");
	config_errors_clear(&e);
	if (cfg)
		*cfg = c;
	else
		config_free(c);
	return r;
}

static void test_new_keys(void)
{
	static const struct {
		const char *mode;
		unsigned want;		/* 0: refused with why */
		const char *why;
	} modes[] = {
		{ "0600", 0600, NULL }, { "0660", 0660, NULL },
		{ "0640", 0640, NULL }, { "0620", 0620, NULL },
		{ "600", 0600, NULL }, { "660", 0660, NULL },
		{ "0666", 0, "must not give others any access (for a group, "
		  "set control.group and 0660)" },
		{ "0604", 0, "must not give others any access (for a group, "
		  "set control.group and 0660)" },
		{ "0601", 0, "must not give others any access (for a group, "
		  "set control.group and 0660)" },
		{ "0777", 0, "must not give others any access (for a group, "
		  "set control.group and 0660)" },
		{ "0400", 0, "must give the owner read and write (0600)" },
		{ "0200", 0, "must give the owner read and write (0600)" },
		{ "0000", 0, "must give the owner read and write (0600)" },
		{ "0700", 0, "must not have execute bits (a socket needs read "
		  "and write)" },
		{ "0670", 0, "must not have execute bits (a socket needs read "
		  "and write)" },
		{ "0610", 0, "must not have execute bits (a socket needs read "
		  "and write)" },
		{ "4660", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
		{ "1600", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
		{ "00660", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
		{ "60", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
		{ "0680", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
		{ "0x1b0", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
		{ "rw-rw----", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
		{ "", 0, "expected an octal mode such as \"0600\" or "
		  "\"0660\"" },
	};
	static const struct {
		const char *yaml;
		const char *want;	/* first message, or "ok" */
	} cases[] = {
		{ "shutdown_grace: 0\n", "ok" },
		{ "shutdown_grace: 0ms\n", "ok" },
		{ "shutdown_grace: 0d0s\n", "ok" },
		{ "shutdown_grace: 00\n", "buf.yaml:5:17: shutdown_grace: bad "
		  "duration \"00\": a unit is required (ms, s, m, h, d)" },
		{ "shutdown_grace: \"\"\n", "buf.yaml:5:17: shutdown_grace: "
		  "bad duration \"\": must not be empty" },
		{ "shutdown_grace: -1s\n", "buf.yaml:5:17: shutdown_grace: bad "
		  "duration \"-1s\": expected a number and a unit, e.g. 5s or "
		  "1h30m" },
		{ "shutdown_grace: [5s]\n", "buf.yaml:5:17: shutdown_grace: "
		  "expected a scalar" },
		{ "defaults: {idle_timeout: 0}\n", "buf.yaml:5:26: "
		  "defaults.idle_timeout: bad duration \"0\": a unit is "
		  "required (ms, s, m, h, d)" },
		{ "defaults: {idle_timeout: 0s}\n", "buf.yaml:5:26: "
		  "defaults.idle_timeout: bad duration \"0s\": must be greater "
		  "than zero" },
		{ "limits: {connections_per_namespace: 999999}\n", "ok" },
		{ "limits: {connections_per_second: 999999, burst: 1999999}\n",
		  "ok" },
		{ "limits: {connections_per_second: 1, burst: 1}\n", "ok" },
		{ "limits: {connections_per_namespace: 1e3}\n", "buf.yaml:5:37: "
		  "limits.connections_per_namespace: expected a whole number "
		  "below 1000000, not \"1e3\"" },
		{ "limits: {connections_per_second: \" 5\"}\n", "buf.yaml:5:34: "
		  "limits.connections_per_second: expected a whole number "
		  "below 1000000, not \" 5\"" },
		{ "limits: {connections_per_second: 5, burst: 0}\n",
		  "buf.yaml:5:44: limits.burst: must be at least 1 when "
		  "connections_per_second is not 0" },
		{ "limits: {burst: 0}\n", "ok" },
		{ "limits: {}\n", "ok" },
		{ "limits: []\n", "buf.yaml:5:9: limits: expected a mapping" },
		{ "control: {path: /run/a.sock, mode: \"0600\"}\n", "ok" },
		{ "control: {group: \"\"}\n", "buf.yaml:5:18: control.group: "
		  "bad group name \"\": must not be empty" },
		{ "control: {group: \"a:b\"}\n", "buf.yaml:5:18: control.group: "
		  "bad group name \"a:b\": must not contain '/', ':', ',' or "
		  "white space" },
		{ "control: {group: 1234}\n", "ok" },
		{ "metrics: {listen: \"0.0.0.0:9543\"}\n", "ok" },
		{ "metrics: {listen: \"localhost:9543\"}\n", "buf.yaml:5:19: "
		  "metrics.listen: not an IP address (host names are not "
		  "supported)" },
		{ "metrics: {listen: \"127.0.0.1:0\"}\n", "buf.yaml:5:19: "
		  "metrics.listen: port 0 out of range" },
		{ "metrics: {listen: [\"127.0.0.1:1\"]}\n", "buf.yaml:5:19: "
		  "metrics.listen: expected a scalar" },
		{ "provision: {removed: Keep}\n", "buf.yaml:5:22: "
		  "provision.removed: expected keep or deprovision, not "
		  "\"Keep\"" },
		{ "provision: {control: /run/a.sock}\n"
		  "control: {path: /run/a.sock}\n", "ok" },
		{ "control: {path: /run/a.sock}\n"
		  "provision: {control: /run/a.sock/}\n", "buf.yaml:6:22: "
		  "provision.control: \"/run/a.sock/\" differs from "
		  "control.path \"/run/a.sock\" at 5:17 (provision.control is "
		  "its old name: give only control.path)" },
	};
	char yaml[512], path[200], *m;
	struct config *cfg;
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		snprintf(yaml, sizeof(yaml), "control: {mode: \"%s\"}\n",
			 modes[i].mode);
		m = parse_with(yaml, &cfg);
		if (modes[i].want) {
			ok(cfg && cfg->control.mode == modes[i].want,
			   "control.mode \"%s\" is 0%o", modes[i].mode,
			   modes[i].want);
		} else {
			char want[300];

			snprintf(want, sizeof(want), "buf.yaml:5:17: "
				 "control.mode: bad mode \"%s\": %s",
				 modes[i].mode, modes[i].why);
			is_str(m, want, "control.mode \"%s\" is refused",
			       modes[i].mode);
		}
		config_free(cfg);
		free(m);
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = parse_with(cases[i].yaml, NULL);
		is_str(m, cases[i].want, "%.*s", (int)strcspn(cases[i].yaml,
							      "\n"),
		       cases[i].yaml);
		free(m);
	}

	/* A unix socket path holds 107 bytes. */
	memset(path, 'c', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(yaml, sizeof(yaml), "control: {path: %s}\n", path);
	m = parse_with(yaml, &cfg);
	ok(cfg && !strcmp(cfg->control.path, path),
	   "control.path of 107 bytes is fine");
	config_free(cfg);
	free(m);
	path[107] = 'c';
	path[108] = '\0';
	snprintf(yaml, sizeof(yaml), "provision: {control: %s}\n", path);
	m = parse_with(yaml, NULL);
	is_str(m, "buf.yaml:5:22: provision.control: longer than 107 bytes: "
	       "too long for a unix socket", "provision.control of 108 bytes "
	       "is refused");
	free(m);
}

/* ---- reload: diff, service equality, fixed keys ---------------------- */

static struct config *parse_ok(const char *yaml)
{
	struct config_errors e = { NULL, 0 };
	struct config *cfg;

	if (config_parse_buffer("d.yaml", yaml, strlen(yaml), &cfg, &e)) {
		diag("cannot parse:\n%s", yaml);
		show_errors(&e);
	}
	config_errors_clear(&e);
	return cfg;
}

static const char diff_base[] =
	"namespaces: {names: [a, b, c]}\n"
	"limits: {connections_per_namespace: 10}\n"
	"services:\n"
	"  one: {listen: [\"127.0.0.1:1\", \"[::1]:1\"], "
	"upstream: \"127.0.0.1:2\", namespaces: [a, b]}\n"
	"  two: {listen: \"127.0.0.1:3\", upstream: /run/two.sock}\n"
	"  three: {listen: \"127.0.0.1:4\", upstream: \"127.0.0.1:4\"}\n"
	"provision: {users: [alice, bob, {name: carol, index: 3}]}\n";

static void test_service_equal(void)
{
	static const struct {
		const char *one;	/* the service "one" of the variant */
		bool equal;
		const char *what;
	} cases[] = {
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b]}", true, "the same" },
		{ "{listen: [\"[0::1]:1\", \"127.0.0.1:1\"], upstream: "
		  "\"127.0.0.1:02\", namespaces: [b, a], "
		  "connect_timeout: 5s}", true,
		  "listen and namespaces reordered, same values written "
		  "otherwise" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:3\", namespaces: [a, b]}", false,
		  "another upstream port" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "[\"127.0.0.1:2\"], namespaces: [a, b], balance: first, "
		  "check: {protocol: none, interval: 2s, timeout: 1s, rise: 2, "
		  "fall: 3}}", true, "a list of one, defaults written out" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "[\"127.0.0.1:2\", \"127.0.0.1:4\"], namespaces: [a, b]}",
		  false, "a second server" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], balance: leastconn}",
		  false, "another balance" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], proxy_protocol: v2}",
		  false, "a PROXY header" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], proxy_protocol: off}",
		  true, "proxy_protocol: off written out" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], source: namespace}",
		  false, "another source" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], protocol: tcp}",
		  true, "protocol: tcp written out" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], protocol: udp, "
		  "idle_timeout: 1h}", false, "datagrams" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], check: {}}",
		  false, "a tcp check" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], check: {protocol: "
		  "none, fall: 4}}", false, "another fall" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "/run/one.sock, namespaces: [a, b]}", false,
		  "a unix upstream" },
		{ "{listen: [\"127.0.0.1:1\"], upstream: \"127.0.0.1:2\", "
		  "namespaces: [a, b]}", false, "one listen address less" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:5\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b]}", false,
		  "another listen port" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, c]}", false,
		  "another namespace" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a]}", false,
		  "one namespace less" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\"}", false, "every namespace" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], idle_timeout: 2h}",
		  false, "another idle timeout" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], connect_timeout: 1s}",
		  false, "another connect timeout" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], fin_timeout: 1s}",
		  false, "another fin timeout" },
		{ "{listen: [\"127.0.0.1:1\", \"[::1]:1\"], upstream: "
		  "\"127.0.0.1:2\", namespaces: [a, b], "
		  "limits: {connections_per_namespace: 5}}", false,
		  "a limit" },
	};
	struct config *base = parse_ok(diff_base), *v;
	char yaml[1024];
	size_t i;

	if (!ok(base != NULL, "the base config parses"))
		return;
	ok(config_service_equal(&base->services[0], &base->services[0]),
	   "a service equals itself");
	ok(!config_service_equal(&base->services[1], &base->services[2]),
	   "two different services are not equal");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(yaml, sizeof(yaml), "namespaces: {names: [a, b, c]}\n"
			 "services:\n  one: %s\n", cases[i].one);
		v = parse_ok(yaml);
		if (!v) {
			ok(false, "config_service_equal: %s", cases[i].what);
			continue;
		}
		ok(config_service_equal(&base->services[0], &v->services[0]) ==
		   cases[i].equal &&
		   config_service_equal(&v->services[0], &base->services[0]) ==
		   cases[i].equal, "config_service_equal: %s: %s",
		   cases[i].what, cases[i].equal ? "equal" : "not equal");
		config_free(v);
	}
	config_free(base);
}

static void test_diff(void)
{
	static const char changed[] =
		"namespaces: {names: [c, d, b, e]}\n"
		"services:\n"
		"  three: {listen: \"127.0.0.1:4\", upstream: \"127.0.0.1:4\"}\n"
		"  one: {listen: [\"127.0.0.1:1\", \"[::1]:1\"], "
		"upstream: \"127.0.0.1:2\", namespaces: [b]}\n"
		"  four: {listen: \"127.0.0.1:5\", upstream: \"127.0.0.1:4\"}\n"
		"  five: {listen: \"127.0.0.1:6\", upstream: \"127.0.0.1:4\"}\n"
		"provision:\n"
		"  users: [dave, {name: carol, index: 9}, erin, alice]\n"
		"  removed: deprovision\n";
	static const char noprov[] =
		"namespaces: {names: [a, b, c]}\n"
		"services:\n"
		"  s: {listen: \"127.0.0.1:4\", upstream: \"127.0.0.1:4\"}\n";
	struct config *a = parse_ok(diff_base), *b = parse_ok(changed);
	struct config *n = parse_ok(noprov);
	struct config_diff d;

	if (!ok(a && b && n, "the configs to compare parse"))
		goto out;
	memset(&d, 0x55, sizeof(d));
	ok(config_diff(a, a, &d) == 0, "config_diff of a config with itself");
	ok(!d.n_services_added && !d.n_services_removed &&
	   !d.n_services_changed && !d.n_namespaces_added &&
	   !d.n_namespaces_removed && !d.n_users_added &&
	   !d.n_users_removed && !d.users_added && !d.users_removed,
	   "  is empty");
	config_diff_free(&d);

	ok(config_diff(a, b, &d) == 0, "config_diff from base to changed");
	is_int(d.n_services_added, 2, "  services added: four, five");
	is_int(d.n_services_removed, 1, "  services removed: two");
	is_int(d.n_services_changed, 1, "  services changed: one");
	is_int(d.n_namespaces_added, 2, "  namespaces added: d, e");
	is_int(d.n_namespaces_removed, 1, "  namespaces removed: a");
	if (is_int(d.n_users_added, 2, "  two users added"))
		ok(!strcmp(d.users_added[0], "dave") &&
		   !strcmp(d.users_added[1], "erin"),
		   "  dave and erin, in file order");
	if (is_int(d.n_users_removed, 1, "  one user removed"))
		is_str(d.users_removed[0], "bob", "  bob");
	config_diff_free(&d);
	ok(!d.users_added && !d.n_users_added, "config_diff_free empties it");
	config_diff_free(&d);
	config_diff_free(NULL);
	ok(true, "config_diff_free twice, and on NULL");

	ok(config_diff(b, a, &d) == 0, "config_diff back from changed");
	ok(d.n_services_added == 1 && d.n_services_removed == 2 &&
	   d.n_services_changed == 1 && d.n_namespaces_added == 1 &&
	   d.n_namespaces_removed == 2, "  the counts reversed");
	ok(d.n_users_added == 1 && !strcmp(d.users_added[0], "bob") &&
	   d.n_users_removed == 2 && !strcmp(d.users_removed[0], "dave") &&
	   !strcmp(d.users_removed[1], "erin"), "  the users reversed");
	config_diff_free(&d);

	ok(config_diff(a, n, &d) == 0, "config_diff to provision off");
	ok(d.n_users_removed == 3 && !d.n_users_added &&
	   !strcmp(d.users_removed[2], "carol"),
	   "  every provisioned user is removed");
	config_diff_free(&d);
	ok(config_diff(n, a, &d) == 0 && d.n_users_added == 3 &&
	   !d.n_users_removed, "config_diff to provision on adds them all");
	config_diff_free(&d);
out:
	config_free(a);
	config_free(b);
	config_free(n);
}

static void test_fixed_key(void)
{
	static const char base[] =
		"namespaces: {dir: /run/netns}\n"
		"services:\n"
		"  s: {listen: \"127.0.0.1:1\", upstream: \"127.0.0.1:2\"}\n"
		"provision: {users: [alice]}\n";
	static const struct {
		const char *yaml;
		const char *key;	/* NULL: a reload may apply it */
	} cases[] = {
		{ "namespaces: {dir: /run/netns}\n", NULL },
		{ "namespaces: {dir: /run/netns, names: [x]}\n"
		  "limits: {connections_per_namespace: 1}\n"
		  "shutdown_grace: 0\nmetrics: {listen: \"127.0.0.1:9\"}\n"
		  "provision: {users: [bob], removed: deprovision}\n", NULL },
		{ "provision: {users: [bob], hosts_file: /run/h}\n",
		  "provision.hosts_file" },
		{ "provision: {users: [bob], domain: d}\n", "provision.domain" },
		{ "provision: {users: [alice], uid_base: 1000, ipv4_pool: "
		  "100.64.0.0/10, ipv6_pool: \"fd75:6272:7370::/48\", "
		  "namespace: \"%u\", host_interface: \"nsr%i\", "
		  "namespace_interface: veth0, control: "
		  "/run/nsrelay/control.sock}\n"
		  "control: {path: /run/nsrelay/control.sock, mode: 600}\n",
		  NULL },
		{ "namespaces: {dir: /run/netns2}\n", "namespaces.dir" },
		{ "user: other\n", "user" },
		{ "control: {path: /run/c.sock}\n", "control.path" },
		{ "provision: {control: /run/c.sock}\n", "control.path" },
		{ "control: {group: adm}\n", "control.group" },
		{ "control: {mode: \"0660\"}\n", "control.mode" },
		{ "provision: {uid_base: 2000}\n", "provision.uid_base" },
		{ "provision: {ipv4_pool: 100.64.0.0/16}\n",
		  "provision.ipv4_pool" },
		{ "provision: {ipv4_pool: 100.65.0.0/16}\n",
		  "provision.ipv4_pool" },
		{ "provision: {ipv6_pool: \"fd75:1::/48\"}\n",
		  "provision.ipv6_pool" },
		{ "provision: {namespace: \"u-%u\"}\n", "provision.namespace" },
		{ "provision: {host_interface: \"h%i\"}\n",
		  "provision.host_interface" },
		{ "provision: {namespace_interface: eth0}\n",
		  "provision.namespace_interface" },
	};
	struct config *a = parse_ok(base), *b, *off;
	char yaml[1024];
	size_t i;

	if (!ok(a != NULL, "config_fixed_key: the base parses"))
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *k1, *k2;

		/* The variant's keys first: later ones repeat the base's
		 * only where the variant has none. */
		snprintf(yaml, sizeof(yaml), "%s%s%s%s", cases[i].yaml,
			 "services:\n  s: {listen: \"127.0.0.1:1\", "
			 "upstream: \"127.0.0.1:2\"}\n",
			 strstr(cases[i].yaml, "provision:") ? "" :
			 "provision: {users: [alice]}\n", "");
		b = parse_ok(yaml);
		if (!b) {
			ok(false, "config_fixed_key: case %zu parses", i);
			continue;
		}
		k1 = config_fixed_key(a, b);
		k2 = config_fixed_key(b, a);
		if (cases[i].key)
			ok(k1 && k2 && !strcmp(k1, cases[i].key) &&
			   !strcmp(k2, cases[i].key),
			   "config_fixed_key: %s needs a restart (got %s)",
			   cases[i].key, k1 ? k1 : "NULL");
		else
			ok(!k1 && !k2, "config_fixed_key: case %zu may be "
			   "reloaded (got %s)", i, k1 ? k1 : "NULL");
		config_free(b);
	}
	off = parse_ok("services:\n  s: {listen: \"127.0.0.1:1\", upstream: "
		       "\"127.0.0.1:2\"}\n");
	is_str(off ? config_fixed_key(a, off) : NULL, "provision",
	       "config_fixed_key: provision off needs a restart");
	is_str(off ? config_fixed_key(off, a) : NULL, "provision",
	       "config_fixed_key: provision on needs a restart");
	b = parse_ok("services:\n  t: {listen: \"127.0.0.1:7\", upstream: "
		     "\"127.0.0.1:8\"}\nlimits: {connections_per_second: 1}\n");
	ok(off && b && !config_fixed_key(off, b) && !config_fixed_key(b, off),
	   "config_fixed_key: without provision, services and limits may "
	   "be reloaded");
	config_free(b);
	config_free(off);
	config_free(a);
}

static void test_api(void)
{
	struct config_errors e = { NULL, 0 };
	struct config *cfg = (struct config *)&e;
	char path[] = "/tmp/config_test.XXXXXX", *big;
	char want[256];
	size_t len;
	int fd, rc, i;

	/* Reload many times: leaks would show under LeakSanitizer. */
	for (i = 0, rc = 0; i < 50 && !rc; i++) {
		rc = config_load(CONFIG_CASES "/valid/full.yaml", &cfg, &e);
		config_free(cfg);
	}
	ok(!rc && !e.n && !e.msg, "repeated loads succeed, errors untouched");

	rc = config_load(CONFIG_CASES "/../../contrib/nsrelay.yaml", &cfg,
			 &e);
	if (!ok(rc == 0 && cfg && !e.n, "contrib/nsrelay.yaml parses"))
		show_errors(&e);
	if (cfg) {
		ok(cfg->n_services == 3 && cfg->ns_all,
		   "contrib: three services, every namespace");
		ok(cfg->limits.conns == CONFIG_DEFAULT_LIMIT_CONNS &&
		   cfg->limits.rate == CONFIG_DEFAULT_LIMIT_RATE &&
		   cfg->limits.burst == CONFIG_DEFAULT_LIMIT_BURST &&
		   cfg->shutdown_grace_ms == CONFIG_DEFAULT_SHUTDOWN_GRACE_MS &&
		   !strcmp(cfg->control.path, CONFIG_DEFAULT_CONTROL) &&
		   cfg->control.mode == 0600 && !cfg->control.group &&
		   !cfg->metrics.enabled,
		   "contrib: limits, grace and control as the defaults");
	}
	config_free(cfg);
	config_free(NULL);

	rc = config_load(CONFIG_CASES "/no-such-file.yaml", &cfg, &e);
	snprintf(want, sizeof(want), "%s: %s",
		 CONFIG_CASES "/no-such-file.yaml", strerror(ENOENT));
	ok(rc == -1 && !cfg && e.n == 1, "missing file fails");
	is_str(e.n ? e.msg[0] : NULL, want, "  with PATH: strerror");
	config_errors_clear(&e);

	/* Errors are appended to what the caller already has. */
	config_load(CONFIG_CASES "/invalid/empty.yaml", &cfg, &e);
	config_load(CONFIG_CASES "/invalid/user-root.yaml", &cfg, &e);
	ok(e.n == 2 && strstr(e.msg[0], "empty.yaml:1:1: ") &&
	   strstr(e.msg[1], "user-root.yaml:1:7: "), "errors accumulate");
	rc = config_load(CONFIG_CASES "/valid/minimal.yaml", &cfg, &e);
	ok(rc == 0 && e.n == 2, "success leaves errors untouched");
	config_free(cfg);
	config_errors_clear(&e);
	config_errors_clear(&e);
	ok(!e.n && !e.msg, "errors cleared twice");

	/* 4 MiB of comments is fine; one byte more is too large. */
	fd = mkstemp(path);
	len = 4u << 20;
	big = malloc(len + 1);
	memset(big, '#', len + 1);
	memcpy(big, svc, sizeof(svc) - 1);
	if (!ok(fd >= 0 && write(fd, big, len) == (ssize_t)len,
		"made a 4 MiB file"))
		goto out;
	rc = config_load(path, &cfg, &e);
	ok(rc == 0, "4 MiB file loads");
	config_free(cfg);
	if (write(fd, "#", 1) != 1)
		diag("write: %s", strerror(errno));
	rc = config_load(path, &cfg, &e);
	snprintf(want, sizeof(want), "%s: file too large", path);
	ok(rc == -1 && !cfg && e.n == 1, "4 MiB + 1 byte is refused");
	is_str(e.n ? e.msg[0] : NULL, want, "  as too large");
	config_errors_clear(&e);
	rc = config_parse_buffer("big", big, len + 1, &cfg, &e);
	ok(rc == -1 && !cfg && e.n == 1 &&
	   !strcmp(e.msg[0], "big: file too large"),
	   "config_parse_buffer has the same limit");
	config_errors_clear(&e);
out:
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(big);
}

/* uid_of for config_check_users(): a fixed table. */
static int fake_uid(const char *name, uint32_t *uid, void *arg)
{
	static const struct {
		const char *name;
		uint32_t uid;
	} pw[] = {
		{ "alice", 2001 }, { "bob", 17 }, { "carol", 1999 },
		{ "toor", 0 },
	};

	(*(int *)arg)++;
	for (size_t i = 0; i < sizeof(pw) / sizeof(pw[0]); i++) {
		if (!strcmp(pw[i].name, name)) {
			*uid = pw[i].uid;
			return 0;
		}
	}
	return -ENOENT;
}

static void test_host_checks(void)
{
	static const char users[] =
		"services:\n"
		"  s: {listen: \"127.0.0.1:1\", upstream: \"127.0.0.1:2\"}\n"
		"provision:\n"
		"  uid_base: 2000\n"
		"  users: [alice, {name: bob, index: 3}, carol, toor, "
		"nobody9]\n";
	static const char count[] =
		"namespaces: {names: [a, b, c]}\n"
		"services:\n"
		"  s: {listen: [\"127.0.0.1:1\", \"[::1]:1\"], "
		"upstream: \"127.0.0.1:2\"}\n"
		"  t: {listen: \"127.0.0.1:2\", upstream: \"127.0.0.1:2\", "
		"namespaces: [b, c]}\n";
	static const char all[] =
		"namespaces: {all: true, names: [x]}\n"
		"services:\n"
		"  s: {listen: [\"127.0.0.1:1\", \"127.0.0.2:1\"], "
		"upstream: \"127.0.0.1:2\"}\n"
		"  t: {listen: \"127.0.0.1:2\", upstream: \"127.0.0.1:2\", "
		"namespaces: [x]}\n";
	struct config_errors e = { NULL, 0 };
	struct config *cfg;
	int calls = 0, r;

	r = config_parse_buffer("u.yaml", users, sizeof(users) - 1, &cfg, &e);
	if (!ok(r == 0, "users config parses"))
		show_errors(&e);
	r = cfg ? config_check_users(cfg, fake_uid, &calls, &e) : -1;
	is_int(r, 2, "config_check_users: two problems");
	is_int(calls, 5, "  every user looked up");
	is_str(e.n > 0 ? e.msg[0] : NULL, "u.yaml:5:41: provision.users[2]: "
	       "\"carol\" has uid 1999, below uid_base 2000 (give it an "
	       "index, or lower uid_base)", "  a uid below uid_base");
	is_str(e.n > 1 ? e.msg[1] : NULL, "u.yaml:5:48: provision.users[3]: "
	       "\"toor\" has uid 0: refused", "  uid 0 under another name");
	is_int(e.n, 2, "  bob (explicit index) and nobody9 (no such user) "
	       "pass");
	config_errors_clear(&e);
	config_free(cfg);

	r = config_parse_buffer("c.yaml", count, sizeof(count) - 1, &cfg, &e);
	if (!ok(r == 0, "listed namespaces parse"))
		show_errors(&e);
	is_int(cfg ? config_listener_count(cfg, 1000) : 0, 2 * 3 + 2,
	       "config_listener_count: listed names are counted exactly");
	is_int(cfg ? config_check_listeners(cfg, 0, 8, &e) : -1, 0,
	       "config_check_listeners: 8 fit in 8");
	is_int(cfg ? config_check_listeners(cfg, 0, 7, &e) : -1, 1,
	       "config_check_listeners: 8 do not fit in 7");
	is_str(e.n ? e.msg[0] : NULL, "c.yaml: 8 listening sockets (listen "
	       "addresses times namespaces) do not fit the descriptor limit: "
	       "7 left for them", "  with the figures");
	config_errors_clear(&e);
	config_free(cfg);

	r = config_parse_buffer("a.yaml", all, sizeof(all) - 1, &cfg, &e);
	if (!ok(r == 0, "all: true parses"))
		show_errors(&e);
	is_int(cfg ? config_listener_count(cfg, 10) : 0, 2 * 11 + 1,
	       "config_listener_count: all: true counts those found");
	is_int(cfg ? (long long)config_listener_count(cfg, SIZE_MAX) : 0,
	       (long long)SIZE_MAX, "config_listener_count saturates");
	config_errors_clear(&e);
	config_free(cfg);
}

/* --check must not hang on a FIFO, nor read a device or a directory. */
static void test_not_regular(void)
{
	char dir[] = "/tmp/config_test.XXXXXX", fifo[64], want[128];
	struct config_errors e = { NULL, 0 };
	struct config *cfg;
	int r;

	if (!ok(mkdtemp(dir) != NULL, "made a directory"))
		return;
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	if (ok(mkfifo(fifo, 0600) == 0, "made a FIFO")) {
		alarm(10);	/* blocking in open() ends the test */
		r = config_load(fifo, &cfg, &e);
		alarm(0);
		snprintf(want, sizeof(want), "%s: not a regular file", fifo);
		ok(r == -1 && !cfg && e.n == 1, "a FIFO is refused at once");
		is_str(e.n ? e.msg[0] : NULL, want, "  not a regular file");
		config_errors_clear(&e);
		unlink(fifo);
	}
	r = config_load(dir, &cfg, &e);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	ok(r == -1 && e.n == 1, "a directory is refused");
	is_str(e.n ? e.msg[0] : NULL, want, "  not a regular file");
	config_errors_clear(&e);
	r = config_load("/dev/zero", &cfg, &e);
	is_str(e.n ? e.msg[0] : NULL, "/dev/zero: not a regular file",
	       "a device is refused");
	config_errors_clear(&e);
	rmdir(dir);
}

int main(void)
{
	test_durations();
	test_sockaddrs();
	test_ns_names();
	test_valid();
	test_invalid();
	test_buffers();
	test_new_keys();
	test_service_equal();
	test_diff();
	test_fixed_key();
	test_api();
	test_host_checks();
	test_not_regular();
	return done_testing();
}
