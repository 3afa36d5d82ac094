/* SPDX-License-Identifier: MIT */
/* nsrelayctl: talk to nsrelayd over its control socket.
 *
 * One command, one request line, one answer (control.c describes the
 * protocol; nsrelayctl(8) the commands and exit codes).  JSON answers are
 * printed as they come with --json, else turned into an aligned table by a
 * small JSON reader here (the answer is the daemon's, but it is still read
 * with bounds: depth, size).  `check FILE` needs no daemon: it loads the
 * file with the daemon's own config library.
 *
 * Exit codes: 0 done; 1 the daemon (or the config check) said no;
 * 2 usage; 3 the daemon could not be reached or its answer not read.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"

#define EXIT_NO		1
#define EXIT_USAGE	2
#define EXIT_COMM	3
#define ANSWER_MAX	(1024UL << 20)	/* one answer line, bytes */
#define JSON_DEPTH	32

static int timeout_ms = 60 * 1000;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nsrelayctl [-s SOCKET] [-t SECONDS] COMMAND\n"
		"  status [--json]          the daemon: version, uptime, config, "
		"counts\n"
		"  stats [NAMESPACE] [--json]\n"
		"                           per namespace and service: listeners, "
		"connections,\n"
		"                           bytes, failures; veth counters; "
		"the services'\n"
		"                           servers (UPSTREAMS)\n"
		"  reload                   reload the config; print its errors "
		"if it fails\n"
		"  provision USER           create and wire USER's namespace\n"
		"  deprovision USER         remove it\n"
		"  check FILE               validate a config file here, without "
		"the daemon\n"
		"options:\n"
		"  -s, --socket SOCKET      control socket (default "
		CONFIG_DEFAULT_CONTROL ")\n"
		"  -t, --timeout SECONDS    wait for an answer at most this long "
		"(default 60)\n"
		"  -j, --json               print the JSON answer as it is\n"
		"  -h, --help, -V, --version\n"
		"exit status: 0 done, 1 refused or failed, 2 usage, 3 daemon not "
		"reachable\n");
}

/* ------------------------------------------------------------ the socket */

struct conn {
	int fd;
	char *buf;
	size_t len, cap, off;
	size_t seen;			/* bytes after off known to hold no
					 * newline (a long line is scanned once) */
};

static int conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "nsrelayctl: %s: path too long\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun,
				 sizeof(sun)) < 0) {
		fprintf(stderr, "nsrelayctl: %s: %s%s\n", path,
			strerror(errno), errno == EACCES ?
			" (root, or a member of control.group, may connect)" :
			errno == ENOENT || errno == ECONNREFUSED ?
			" (is nsrelayd running? -s SOCKET)" : "");
		if (c->fd >= 0)
			close(c->fd);
		return -1;
	}
	return 0;
}

static int conn_send(struct conn *c, const char *line)
{
	size_t len = strlen(line), done = 0;
	ssize_t n;

	while (done < len) {
		n = send(c->fd, line + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		/* refused at once ("too many clients"): its answer waits */
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return 0;
		if (n < 0) {
			fprintf(stderr, "nsrelayctl: sending: %s\n",
				strerror(errno));
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* The next line of the answer, without its newline, NUL-terminated (valid
 * until the next call), or NULL (reported). */
static char *conn_line(struct conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	char *nl, *line;
	ssize_t n;

	for (;;) {
		nl = c->len > c->off + c->seen ?
		     memchr(c->buf + c->off + c->seen, '\n',
			    c->len - c->off - c->seen) : NULL;
		if (nl) {
			*nl = '\0';
			line = c->buf + c->off;
			c->off = (size_t)(nl - c->buf) + 1;
			c->seen = 0;
			return line;
		}
		c->seen = c->len - c->off;
		if (c->off) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->len + 65536 + 1 > c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 65536 * 2;
			char *b;

			if (cap > ANSWER_MAX) {
				fprintf(stderr, "nsrelayctl: answer too long\n");
				return NULL;
			}
			b = realloc(c->buf, cap);
			if (!b) {
				fprintf(stderr, "nsrelayctl: out of memory\n");
				return NULL;
			}
			c->buf = b;
			c->cap = cap;
		}
		n = poll(&p, 1, timeout_ms);
		if (n == 0) {
			fprintf(stderr, "nsrelayctl: no answer within %d s\n",
				timeout_ms / 1000);
			return NULL;
		}
		n = n < 0 ? -1 : recv(c->fd, c->buf + c->len, 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "nsrelayctl: %s\n", n < 0 ?
				strerror(errno) : "the daemon closed the "
				"connection without an answer");
			return NULL;
		}
		c->len += (size_t)n;
	}
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->buf);
}

/* ------------------------------------------------------------ JSON */

enum jt { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jt t;
	double num;
	bool b;
	char *str;			/* J_STR; the key in an object */
	char *key;
	struct jv *kids;		/* J_ARR, J_OBJ */
	size_t n;
};

struct jp {
	const char *s;
	int depth;
	bool bad;
};

static void ws(struct jp *p)
{
	while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' ||
	       *p->s == '\r')
		p->s++;
}

static char *jstring(struct jp *p)
{
	size_t cap = 16, n = 0;
	char *out = malloc(cap);

	if (!out || *p->s != '"')
		goto bad;
	p->s++;
	while (*p->s && *p->s != '"') {
		char ch = *p->s++;
		unsigned u;

		if (n + 8 > cap) {
			char *o = realloc(out, cap *= 2);

			if (!o)
				goto bad;
			out = o;
		}
		if (ch != '\\') {
			out[n++] = ch;
			continue;
		}
		switch (*p->s++) {
		case '"': out[n++] = '"'; break;
		case '\\': out[n++] = '\\'; break;
		case '/': out[n++] = '/'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u':
			if (sscanf(p->s, "%4x", &u) != 1)
				goto bad;
			p->s += 4;
			/* shown on a terminal: keep it one printable byte */
			out[n++] = u >= 0x20 && u < 0x7f ? (char)u : '?';
			break;
		default:
			goto bad;
		}
	}
	if (*p->s != '"')
		goto bad;
	p->s++;
	out[n] = '\0';
	return out;
bad:
	free(out);
	p->bad = true;
	return NULL;
}

static void jfree(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++)
		jfree(&v->kids[i]);
	free(v->kids);
	free(v->str);
	free(v->key);
}

static void jvalue(struct jp *p, struct jv *v)
{
	char *end;

	memset(v, 0, sizeof(*v));
	ws(p);
	if (++p->depth > JSON_DEPTH) {
		p->bad = true;
		return;
	}
	if (*p->s == '{' || *p->s == '[') {
		char close = *p->s == '{' ? '}' : ']';
		size_t cap = 0;

		v->t = close == '}' ? J_OBJ : J_ARR;
		p->s++;
		ws(p);
		if (*p->s == close) {
			p->s++;
			goto out;
		}
		for (;;) {
			struct jv kid;
			char *key = NULL;

			ws(p);
			if (v->t == J_OBJ) {
				key = jstring(p);
				ws(p);
				if (p->bad || *p->s != ':') {
					free(key);
					p->bad = true;
					goto out;
				}
				p->s++;
			}
			jvalue(p, &kid);
			kid.key = key;
			if (v->n == cap) {
				struct jv *k = realloc(v->kids, (cap = cap ?
							cap * 2 : 8) *
						       sizeof(*k));

				if (!k) {
					jfree(&kid);
					p->bad = true;
					goto out;
				}
				v->kids = k;
			}
			v->kids[v->n++] = kid;
			if (p->bad)
				goto out;
			ws(p);
			if (*p->s == ',') {
				p->s++;
				continue;
			}
			if (*p->s == close) {
				p->s++;
				goto out;
			}
			p->bad = true;
			goto out;
		}
	}
	if (*p->s == '"') {
		v->t = J_STR;
		v->str = jstring(p);
	} else if (strncmp(p->s, "true", 4) == 0) {
		v->t = J_BOOL;
		v->b = true;
		p->s += 4;
	} else if (strncmp(p->s, "false", 5) == 0) {
		v->t = J_BOOL;
		p->s += 5;
	} else if (strncmp(p->s, "null", 4) == 0) {
		v->t = J_NULL;
		p->s += 4;
	} else {
		v->t = J_NUM;
		v->num = strtod(p->s, &end);
		if (end == p->s)
			p->bad = true;
		p->s = end;
	}
out:
	p->depth--;
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->kids[i].key, key) == 0)
			return &o->kids[i];
	return NULL;
}

static unsigned long long jnum(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key);

	return v && v->t == J_NUM && v->num >= 0 ?
	       (unsigned long long)v->num : 0;
}

static const char *jstr(const struct jv *o, const char *key)
{
	const struct jv *v = jget(o, key);

	return v && v->t == J_STR ? v->str : NULL;
}

/* ------------------------------------------------------------ tables */

#define COLS	10

struct table {
	char *(*cell)[COLS];
	size_t n, cap;
	unsigned ncols;
};

static void row(struct table *t, ...)
	__attribute__((sentinel));

static void row(struct table *t, ...)
{
	va_list ap;
	const char *s;
	unsigned i = 0;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cell = realloc(t->cell, t->cap * sizeof(*t->cell));
		if (!t->cell) {
			fprintf(stderr, "nsrelayctl: out of memory\n");
			exit(EXIT_COMM);
		}
	}
	va_start(ap, t);
	while ((s = va_arg(ap, const char *)) && i < COLS)
		t->cell[t->n][i++] = strdup(s);
	va_end(ap);
	for (; i < COLS; i++)
		t->cell[t->n][i] = NULL;
	t->n++;
}

static void table_print(struct table *t)
{
	size_t w[COLS] = { 0 };

	for (size_t r = 0; r < t->n; r++)
		for (unsigned i = 0; i < COLS && t->cell[r][i]; i++)
			if (strlen(t->cell[r][i]) > w[i])
				w[i] = strlen(t->cell[r][i]);
	for (size_t r = 0; r < t->n; r++) {
		for (unsigned i = 0; i < COLS && t->cell[r][i]; i++) {
			bool last = i + 1 == COLS || !t->cell[r][i + 1];

			printf("%-*s%s", last ? 0 : (int)w[i], t->cell[r][i],
			       last ? "\n" : "  ");
			free(t->cell[r][i]);
		}
	}
	free(t->cell);
	memset(t, 0, sizeof(*t));
}

static const char *u64s(char *buf, unsigned long long v)
{
	sprintf(buf, "%llu", v);
	return buf;
}

static void ago(char *buf, size_t len, double at)
{
	long long s = (long long)((double)time(NULL) - at);

	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%llds ago", s);
	else if (s < 7200)
		snprintf(buf, len, "%lldm ago", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%lldh ago", s / 3600);
	else
		snprintf(buf, len, "%lldd ago", s / 86400);
}

static void print_daemon(const struct jv *root)
{
	const struct jv *cfg = jget(root, "config"), *counts =
		jget(root, "counts"), *rl = jget(root, "last_reload"),
		*up = jget(root, "uptime");
	double u = up && up->t == J_NUM ? up->num : 0;
	char when[64] = "never";

	if (rl && rl->t == J_OBJ && jget(rl, "at") &&
	    jget(rl, "at")->t == J_NUM)
		ago(when, sizeof(when), jget(rl, "at")->num);
	printf("nsrelayd %s, pid %llu, up %lldd %02lld:%02lld:%02lld%s\n",
	       jstr(root, "version") ? jstr(root, "version") : "?",
	       jnum(root, "pid"), (long long)u / 86400,
	       (long long)u % 86400 / 3600, (long long)u % 3600 / 60,
	       (long long)u % 60,
	       jget(root, "stopping") && jget(root, "stopping")->b ?
	       ", stopping" : "");
	printf("config %s, generation %llu, last reload: %s%s\n",
	       jstr(cfg, "path") ? jstr(cfg, "path") : "?",
	       jnum(cfg, "generation"),
	       rl && rl->t == J_OBJ ? (jget(rl, "ok") && jget(rl, "ok")->b ?
				       "ok, " : "FAILED, ") : "",
	       when);
	printf("%llu namespaces, %llu of %llu listeners up, %llu "
	       "connections\n", jnum(counts, "namespaces"),
	       jnum(counts, "listening"), jnum(counts, "listeners"),
	       jnum(counts, "connections"));
}

/* The upper bound of a wait quantile ("<=1ms"), or "-". */
static const char *wait_text(char *buf, size_t len, const struct jv *w,
			     const char *key)
{
	const struct jv *q = jget(w, key);

	if (!q || q->t != J_NUM)
		return "-";
	if (q->num < 1)
		snprintf(buf, len, "<=%gms", q->num * 1000);
	else
		snprintf(buf, len, "<=%gs", q->num);
	return buf;
}

/* Free a table that was not printed. */
static void table_drop(struct table *t)
{
	for (size_t r = 0; r < t->n; r++)
		for (unsigned i = 0; i < COLS && t->cell[r][i]; i++)
			free(t->cell[r][i]);
	free(t->cell);
}

/* The servers of every service (the daemon's "services"), when some
 * service has several or an active check: else nothing is new to say. */
static void print_upstreams(const struct jv *root)
{
	const struct jv *svcs = jget(root, "services");
	struct table t = { 0 };
	char b[4][32], check[64], last[160], server[300];
	bool show = false;

	if (!svcs || svcs->t != J_ARR)
		return;
	row(&t, "SERVICE", "SERVER", "STATE", "ACTIVE", "CONNECTIONS",
	    "FAILURES", "CHECK", "LAST_CHECK", NULL);
	for (size_t i = 0; i < svcs->n; i++) {
		const struct jv *v = &svcs->kids[i], *ups =
			jget(v, "upstreams");
		const char *ck = jstr(v, "check") ? jstr(v, "check") : "?";

		if (!ups || ups->t != J_ARR)
			continue;
		if (ups->n > 1 || strcmp(ck, "none"))
			show = true;
		for (size_t j = 0; j < ups->n; j++) {
			const struct jv *u = &ups->kids[j], *lc =
				jget(u, "last_check"), *at;

			snprintf(check, sizeof(check), "%s", ck);
			if (!lc || lc->t != J_OBJ) {
				strcpy(last, "-");
			} else {
				char when[32] = "";
				const struct jv *ok = jget(lc, "ok"), *lat =
					jget(lc, "latency");

				at = jget(lc, "at");
				if (at && at->t == J_NUM)
					ago(when, sizeof(when), at->num);
				snprintf(last, sizeof(last), "%s %.1fms %s%s%s",
					 ok && ok->b ? "ok" : "FAILED",
					 lat && lat->t == J_NUM ?
					 lat->num * 1000 : 0.0, when,
					 jstr(lc, "error") ? ": " : "",
					 jstr(lc, "error") ? jstr(lc, "error") :
					 "");
			}
			snprintf(server, sizeof(server), "%s%s%s%s",
				 jstr(u, "server") ? jstr(u, "server") : "?",
				 jstr(u, "name") ? " (" : "",
				 jstr(u, "name") ? jstr(u, "name") : "",
				 jstr(u, "name") ? ")" : "");
			row(&t, jstr(v, "name") ? jstr(v, "name") : "?",
			    server,
			    jstr(u, "state") ? jstr(u, "state") : "?",
			    u64s(b[0], jnum(u, "active")),
			    u64s(b[1], jnum(u, "connections")),
			    u64s(b[2], jnum(u, "failures")), check, last,
			    NULL);
		}
	}
	if (!show) {
		table_drop(&t);
		return;
	}
	printf("\nUPSTREAMS\n");
	table_print(&t);
}

/* Who each service's servers are told the client is (proxy_protocol,
 * source), when some service tells them anything. */
static void print_identity(const struct jv *root)
{
	const struct jv *svcs = jget(root, "services");
	struct table t = { 0 };
	bool show = false;

	if (!svcs || svcs->t != J_ARR)
		return;
	row(&t, "SERVICE", "PROXY_PROTOCOL", "SOURCE", NULL);
	for (size_t i = 0; i < svcs->n; i++) {
		const struct jv *v = &svcs->kids[i];
		const char *pp = jstr(v, "proxy_protocol"),
			   *src = jstr(v, "source");

		if ((pp && strcmp(pp, "off")) ||
		    (src && strcmp(src, "default")))
			show = true;
		row(&t, jstr(v, "name") ? jstr(v, "name") : "?",
		    pp ? pp : "-", src ? src : "-", NULL);
	}
	if (!show) {
		table_drop(&t);
		return;
	}
	printf("\nIDENTITY\n");
	table_print(&t);
}

/* The datagram services of namespace NAME (SVCS), a row each into D:
 * live flows, datagrams each way, drops (the reasons seen). */
static void datagram_rows(struct table *d, const char *name,
			  const struct jv *svcs)
{
	char b[4][32], why[256];

	for (size_t j = 0; svcs && j < svcs->n; j++) {
		const struct jv *s = &svcs->kids[j], *dr = jget(s, "drops");
		const char *proto = jstr(s, "protocol");
		uint64_t all = 0;
		size_t len = 0;

		if (!proto || strcmp(proto, "udp"))
			continue;
		why[0] = 0;
		for (size_t k = 0; dr && dr->t == J_OBJ && k < dr->n; k++) {
			const struct jv *r = &dr->kids[k];

			if (r->t != J_NUM || r->num <= 0)
				continue;
			all += (uint64_t)r->num;
			if (len < sizeof(why))
				len += (size_t)snprintf(why + len,
					sizeof(why) - len, "%s%s=%llu",
					len ? "," : "", r->key,
					(unsigned long long)r->num);
		}
		row(d, name, jstr(s, "name") ? jstr(s, "name") : "?",
		    u64s(b[0], jnum(s, "active")),
		    u64s(b[1], jnum(s, "datagrams_in")),
		    u64s(b[2], jnum(s, "datagrams_out")),
		    u64s(b[3], all), why[0] ? why : "-", NULL);
	}
}

static void print_stats(const struct jv *root)
{
	const struct jv *nss = jget(root, "namespaces");
	struct table t = { 0 }, v = { 0 }, h = { 0 }, d = { 0 };
	char b[8][32], why[256];

	print_daemon(root);
	if (!nss || nss->t != J_ARR)
		return;
	putchar('\n');
	row(&t, "NAMESPACE", "SERVICE", "LISTENING", "ACTIVE", "ACCEPTED",
	    "BYTES_IN", "BYTES_OUT", "CONN_FAIL", "TIMEOUTS", "LAST_ERROR",
	    NULL);
	row(&v, "NAMESPACE", "VETH", "RX_BYTES", "TX_BYTES", "RX_PACKETS",
	    "TX_PACKETS", NULL);
	row(&h, "NAMESPACE", "HELD_FAIR", "HELD_CONNS", "HELD_RATE",
	    "HELD_SVC", "WAIT_P50", "WAIT_P99", NULL);
	row(&d, "NAMESPACE", "SERVICE", "FLOWS", "DGRAMS_IN", "DGRAMS_OUT",
	    "DROPPED", "DROP_REASONS", NULL);
	for (size_t i = 0; i < nss->n; i++) {
		const struct jv *ns = &nss->kids[i], *svcs =
			jget(ns, "services"), *veth = jget(ns, "veth");
		const char *name = jstr(ns, "name") ? jstr(ns, "name") : "?";
		const struct jv *held;

		if (!svcs || svcs->t != J_ARR || !svcs->n)
			row(&t, name, "-", "-", "-", "-", "-", "-", "-", "-",
			    jstr(ns, "error") ? jstr(ns, "error") : "-",
			    NULL);
		for (size_t j = 0; svcs && j < svcs->n; j++) {
			const struct jv *s = &svcs->kids[j], *ls =
				jget(s, "listeners"), *le =
				jget(s, "last_error");
			unsigned up = 0, tot = 0;
			const char *lerr = NULL;

			for (size_t k = 0; ls && k < ls->n; k++) {
				const char *st = jstr(&ls->kids[k], "state");

				tot++;
				if (st && strcmp(st, "listening") == 0)
					up++;
				else if (!lerr)
					lerr = jstr(&ls->kids[k], "error");
			}
			snprintf(b[0], sizeof(b[0]), "%u/%u", up, tot);
			if (lerr) {
				snprintf(why, sizeof(why), "%s", lerr);
			} else if (le && le->t == J_OBJ) {
				char when[32] = "";

				if (jget(le, "at") && jget(le, "at")->t ==
				    J_NUM)
					ago(when, sizeof(when),
					    jget(le, "at")->num);
				snprintf(why, sizeof(why), "%s %s",
					 jstr(le, "reason") ?
					 jstr(le, "reason") : "?", when);
			} else {
				strcpy(why, "-");
			}
			row(&t, name, jstr(s, "name") ? jstr(s, "name") : "?",
			    b[0], u64s(b[1], jnum(s, "active")),
			    u64s(b[2], jnum(s, "accepted")),
			    u64s(b[3], jnum(s, "bytes_in")),
			    u64s(b[4], jnum(s, "bytes_out")),
			    u64s(b[5], jnum(s, "connect_failures")),
			    u64s(b[6], jnum(s, "timeouts")), why, NULL);
		}
		datagram_rows(&d, name, svcs);
		held = jget(ns, "held");
		if (held && held->t == J_OBJ &&
		    jnum(held, "fair_share") + jnum(held, "connections") +
		    jnum(held, "rate") + jnum(held, "service")) {
			const struct jv *w = jget(ns, "accept_wait");

			row(&h, name, u64s(b[0], jnum(held, "fair_share")),
			    u64s(b[1], jnum(held, "connections")),
			    u64s(b[2], jnum(held, "rate")),
			    u64s(b[3], jnum(held, "service")),
			    wait_text(b[4], sizeof(b[4]), w, "p50"),
			    wait_text(b[5], sizeof(b[5]), w, "p99"), NULL);
		}
		if (veth && veth->t == J_OBJ)
			row(&v, name, jstr(veth, "name") ? jstr(veth, "name") :
			    "?", u64s(b[0], jnum(veth, "rx_bytes")),
			    u64s(b[1], jnum(veth, "tx_bytes")),
			    u64s(b[2], jnum(veth, "rx_packets")),
			    u64s(b[3], jnum(veth, "tx_packets")), NULL);
	}
	table_print(&t);
	/* the veth counters, and the namespaces that were held back */
	if (v.n > 1) {
		putchar('\n');
		table_print(&v);
	} else {
		table_drop(&v);
	}
	if (h.n > 1) {
		putchar('\n');
		table_print(&h);
	} else {
		table_drop(&h);
	}
	if (d.n > 1) {
		printf("\nDATAGRAMS\n");
		table_print(&d);
	} else {
		table_drop(&d);
	}
	print_upstreams(root);
	print_identity(root);
}

/* ------------------------------------------------------------ commands */

static int cmd_check(const char *path)
{
	struct config_errors errs = { 0 };
	struct config *cfg;

	if (config_load(path, &cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		config_errors_clear(&errs);
		return EXIT_NO;
	}
	printf("%s: ok, %zu services\n", path, cfg->n_services);
	config_free(cfg);
	return 0;
}

/* Send LINE, print the answer.  HUMAN: a JSON answer becomes text with
 * PRINT. */
static int ask(const char *sock, const char *line, bool json_answer,
	       void (*print)(const struct jv *), bool reload)
{
	struct conn c;
	char *ans;
	int rc = 0;

	if (conn_open(&c, sock) < 0)
		return EXIT_COMM;
	if (conn_send(&c, line) < 0 || !(ans = conn_line(&c))) {
		conn_close(&c);
		return EXIT_COMM;
	}
	if (strncmp(ans, "error: ", 7) == 0) {
		unsigned long n = 0;
		char *end;

		fprintf(stderr, "nsrelayctl: %s\n", ans + 7);
		rc = EXIT_NO;
		/* reload: "error: N errors", N lines, an empty line */
		if (reload) {
			n = strtoul(ans + 7, &end, 10);
			if (strcmp(end, " errors") != 0)
				n = 0;
		}
		for (unsigned long i = 0; i < n; i++) {
			if (!(ans = conn_line(&c))) {
				rc = EXIT_COMM;
				break;
			}
			fprintf(stderr, "%s\n", ans);
		}
		if (n && rc == EXIT_NO && !conn_line(&c))
			rc = EXIT_COMM;
	} else if (json_answer && print) {
		struct jp p = { .s = ans };
		struct jv root;

		jvalue(&p, &root);
		if (p.bad || root.t != J_OBJ) {
			fprintf(stderr, "nsrelayctl: the answer is not the "
				"JSON expected\n");
			rc = EXIT_COMM;
		} else {
			print(&root);
		}
		jfree(&root);
	} else {
		puts(ans);
	}
	if (fflush(stdout) == EOF && rc == 0)
		rc = EXIT_COMM;
	conn_close(&c);
	return rc;
}

static bool plain_name(const char *s)
{
	if (!*s || strlen(s) > 255)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789_-.$") == strlen(s) && !strchr(s, '\n');
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = CONFIG_DEFAULT_CONTROL, *cmd;
	bool json = false;
	char line[600];
	char *end;
	long secs;
	int c, nargs;

	/* getopt permutes: options may follow the command (stats NS --json) */
	while ((c = getopt_long(argc, argv, "s:t:jVh", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 't':
			secs = strtol(optarg, &end, 10);
			if (*end || secs < 1 || secs > 86400) {
				fprintf(stderr, "nsrelayctl: -t: seconds, 1 "
					"to 86400\n");
				return EXIT_USAGE;
			}
			timeout_ms = (int)secs * 1000;
			break;
		case 'j': json = true; break;
		case 'V': printf("nsrelayctl %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	nargs = argc - optind - 1;
	for (int i = optind + 1; i < argc; i++)
		if (!plain_name(argv[i]) &&
		    strcmp(cmd, "check") != 0) {
			fprintf(stderr, "nsrelayctl: %s: not a plain name "
				"(letters, digits, '_', '-', '.')\n",
				argv[i]);
			return EXIT_USAGE;
		}
	if (strcmp(cmd, "status") == 0 && nargs == 0)
		return ask(sock, "status\n", true, json ? NULL : print_daemon,
			   false);
	if (strcmp(cmd, "stats") == 0 && nargs <= 1) {
		snprintf(line, sizeof(line), "stats%s%s\n", nargs ? " " : "",
			 nargs ? argv[optind + 1] : "");
		return ask(sock, line, true, json ? NULL : print_stats, false);
	}
	if (strcmp(cmd, "reload") == 0 && nargs == 0)
		return ask(sock, "reload\n", false, NULL, true);
	if ((strcmp(cmd, "provision") == 0 ||
	     strcmp(cmd, "deprovision") == 0) && nargs == 1) {
		snprintf(line, sizeof(line), "%s %s\n", cmd, argv[optind + 1]);
		return ask(sock, line, false, NULL, false);
	}
	if (strcmp(cmd, "check") == 0 && nargs == 1)
		return cmd_check(argv[optind + 1]);
	fprintf(stderr, "nsrelayctl: unknown command or wrong arguments: %s\n",
		cmd);
	usage(stderr);
	return EXIT_USAGE;
}
