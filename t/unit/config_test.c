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
	is_int(s->connect_timeout_ms, 5000, "minimal: default connect");
	is_int(s->idle_timeout_ms, H(1), "minimal: default idle");
	is_int(s->fin_timeout_ms, MIN(1), "minimal: default fin");
	ok(!s->n_namespaces, "minimal: service goes everywhere");
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
	is_str(p->ipv4_pool, "100.80.0.0/12", "provision: ipv4_pool");
	is_int(p->ipv4_pool_at.line, 15, "provision: ipv4_pool line");
	is_int(p->ipv4_pool_at.col, 14, "provision: ipv4_pool column");
	is_str(p->host_template, "veth_%U_out", "provision: host template");
	is_str(p->control, "/run/nsrelay/ctl.sock", "provision: control");
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

static const struct {
	const char *file;
	void (*check)(const struct config *cfg);
} valid_checks[] = {
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
	if (cfg)
		ok(cfg->n_services == 3 && cfg->ns_all,
		   "contrib: three services, every namespace");
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
	test_api();
	test_host_checks();
	test_not_regular();
	return done_testing();
}
