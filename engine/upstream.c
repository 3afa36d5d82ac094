/* SPDX-License-Identifier: MIT */
/* upstream: the servers of every service, their health, the choice of a
 * server for a new connection, and the active checks.
 *
 * Theory of operation
 *
 * The set holds one struct upstream_svc per service of the config and one
 * struct upstream_srv per server of it, in file order.  Health is per
 * server, shared by every namespace: a thousand namespaces' clients of
 * "mysql" teach the same two servers, and one check of each server serves
 * them all.
 *
 * States: up, suspect, down.  A failure (a connect refused, failed or
 * timed out, or a server that closed or reset before its first byte, seen
 * by a connection; or an active check that failed) makes an up server
 * suspect; `fall` failures in a row make it down.  A success (a
 * connection's first byte from the server; a good check) makes a suspect
 * server up again.  A down server gets no client.  With an active check it
 * comes back after `rise` good checks in a row; without one (check:
 * protocol none) it rests for `check.interval`, then the next connection
 * that would go to it in its turn is sent there as a probe (one per
 * interval): a greeting brings it back up, a failure sends it to rest
 * again.  A probe costs its client nothing when the service has another
 * server, because the relay retries a connection that failed before any
 * byte on the next server (relay_set.c).
 *
 * Choosing (upstream_pick()), among the servers in service: `first` the
 * first in file order (failover, and failback once the first is back);
 * `roundrobin` the next after the last one chosen; `leastconn` the one with
 * the fewest live connections, ties broken in round-robin order.  No server
 * in service: NULL, and the relay resets the client at once.
 *
 * Active checks: one timer per server, the first one of the set spread
 * over the interval (server k of N starts k * interval / N after the
 * config is taken), each check started every interval, with its own
 * timeout (at most the interval, so that one check ends before the next).
 * A check is a non-blocking socket and one event on the loop:
 *   connect -> (tcp: done) -> read the greeting -> verdict
 *           -> say goodbye -> wait for the server's FIN -> close
 * The verdict is taken on the greeting: mysql an initial handshake packet
 * (3-byte length, sequence 0, protocol version 10; an error packet 0xff,
 * "too many connections" or "host blocked", is down); smtp a "220" line;
 * imap "* OK" or "* PREAUTH".  Saying goodbye is politeness, not part of
 * the verdict: smtp "QUIT", imap "a LOGOUT", and for mysql a login as the
 * daemon's user with no password, then COM_QUIT if the server let it in.
 * A client that leaves in the middle of the MySQL handshake is an aborted
 * connection: MySQL counts it against max_connect_errors and may block the
 * relay host ("Host is blocked because of many connection errors", as
 * HAProxy's manual warns of its user-less mysql-check), MariaDB 10.11 logs
 * it ("Aborted connection ... closed normally without authentication")
 * and counts Aborted_connects.  A completed login is not a handshake
 * error: refused, it costs one "Access denied" line and Aborted_connects;
 * with an account for the daemon's user with no password and no privilege
 * (as HAProxy's mysql-check user) it costs nothing at all (measured by
 * t/upstream-mariadb.t).  We never send before the server has greeted us
 * (but for the PROXY header of a service with proxy_protocol: v1 "PROXY
 * UNKNOWN", v2 LOCAL, which such a server expects first),
 * and a check that ends leaves with a FIN, never a reset, unless it timed
 * out.
 *
 * Host names: each address a name resolves to is a server in the name's
 * place in the list (see "host names" below).
 *
 * Reload: servers are paired by service name and address; one that stays
 * keeps its state and counters; one that leaves is taken off its service
 * and freed when the last connection holding it ends (refs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "config/config.h"
#include "engine/log.h"
#include "engine/proxyhdr.h"
#include "engine/upstream.h"

#define CHECK_BUF	512		/* a greeting's first line, at most */
#define SRV_MAX		64		/* servers of a service, names resolved */
#define NAME_ADDRS	16		/* addresses taken from one answer */
#define TTL_MIN_MS	1000		/* re-resolve at most once a second */

enum phase {
	CK_IDLE,
	CK_CONNECT,
	CK_GREET,	/* reading the greeting: no verdict yet */
	CK_LOGIN,	/* mysql: waiting for the answer to our login */
	CK_BYE,		/* goodbye said: waiting for the server's FIN */
};

struct upstream_svc;

struct upstream_srv {
	TAILQ_ENTRY(upstream_srv) entry;
	struct upstream_set *set;
	struct upstream_svc *svc;	/* NULL: left the config */
	unsigned refs;			/* the service's, + one a connection */
	struct config_sockaddr addr;
	size_t idx;			/* its entry in the service's list */
	char name[128];			/* the entry "name:port" it was
					 * resolved from; "" for an address */
	enum upstream_state state;
	unsigned fails;			/* failures in a row */
	unsigned oks;			/* good checks in a row while down */
	struct timespec rest_until;	/* down, no check: next probe */
	uint64_t active, connections, failures, checks, checks_failed;
	/* the active check */
	struct event *timer;		/* starts the next check */
	struct event *io;		/* the check's socket, while one runs */
	int fd;
	enum phase phase;
	struct timespec started, deadline;
	char buf[CHECK_BUF];
	size_t len;
	bool checked, check_ok;
	char check_error[128];
	struct timeval check_at;
	uint64_t check_us;
};

TAILQ_HEAD(upstream_srv_list, upstream_srv);

/* A host name of a service's list, resolved again and again. */
struct upstream_name {
	LIST_ENTRY(upstream_name) entry;
	struct upstream_set *set;
	struct upstream_svc *svc;	/* NULL: gone, freed once its
					 * requests have ended */
	size_t idx;			/* its entry in the service's list */
	struct config_sockaddr at;	/* "name:port" as written */
	char host[CONFIG_HOST_MAX + 1];
	struct event *timer;		/* the next resolution */
	int pending;			/* requests in flight */
	bool starting;			/* requests being made */
	bool failing;			/* said once that it does not resolve */
	struct sockaddr_storage got[NAME_ADDRS];
	socklen_t got_len[NAME_ADDRS];
	size_t n_got;
	int ttl;			/* least TTL of the answers, seconds */
	int err;			/* last error of an empty answer */
};

LIST_HEAD(upstream_name_list, upstream_name);

struct upstream_svc {
	TAILQ_ENTRY(upstream_svc) entry;
	char *name;
	enum config_balance balance;
	struct config_check check;
	enum config_proxy_protocol proxy;	/* health checks send it too */
	enum config_source source;		/* for the stats */
	struct upstream_srv_list srvs;
	size_t n;
	size_t rr;			/* round robin: the next to try */
};

TAILQ_HEAD(upstream_svc_list, upstream_svc);

struct upstream_set {
	struct event_base *base;
	struct upstream_svc_list svcs;
	char *user;			/* the mysql check's login */
	struct evdns_base *dns;		/* made with the first name */
	struct upstream_name_list names;	/* live and gone */
	uint64_t refresh_ms;		/* dns.refresh */
};

static const char *const state_names[] = {
	[UPSTREAM_UP] = "up",
	[UPSTREAM_SUSPECT] = "suspect",
	[UPSTREAM_DOWN] = "down",
};

const char *upstream_state_name(enum upstream_state s)
{
	return (size_t)s < sizeof(state_names) / sizeof(state_names[0]) ?
	       state_names[s] : "?";
}

static void now_mono(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static void ts_add_ms(struct timespec *ts, uint64_t ms)
{
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Microseconds from A to B (0 if B is earlier). */
static uint64_t ts_us(const struct timespec *a, const struct timespec *b)
{
	int64_t us = (int64_t)(b->tv_sec - a->tv_sec) * 1000000 +
		     (b->tv_nsec - a->tv_nsec) / 1000;

	return us > 0 ? (uint64_t)us : 0;
}

static void ms_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static const char *svc_name(const struct upstream_srv *s)
{
	return s->svc ? s->svc->name : "(removed)";
}

/* ---- health ---------------------------------------------------------- */

static void went_down(struct upstream_srv *s, const char *why)
{
	s->state = UPSTREAM_DOWN;
	s->oks = 0;
	log_warnx("%s: server %s is down: %u failures in a row, the last: %s",
		  svc_name(s), s->addr.text, s->fails, why);
}

static void went_up(struct upstream_srv *s, const char *how)
{
	if (s->state == UPSTREAM_DOWN)
		log_info("%s: server %s is up again (%s)", svc_name(s),
			 s->addr.text, how);
	s->state = UPSTREAM_UP;
	s->fails = 0;
	s->oks = 0;
}

/* A failure, WHY, passive or active. */
static void failed(struct upstream_srv *s, const char *why)
{
	unsigned fall = s->svc ? s->svc->check.fall : 1;
	uint64_t rest = s->svc ? s->svc->check.interval_ms : 0;

	s->failures++;
	if (s->fails < UINT32_MAX)
		s->fails++;
	s->oks = 0;
	if (s->state != UPSTREAM_DOWN) {
		if (s->fails >= fall)
			went_down(s, why);
		else
			s->state = UPSTREAM_SUSPECT;
	}
	if (s->state == UPSTREAM_DOWN) {
		now_mono(&s->rest_until);
		ts_add_ms(&s->rest_until, rest);
	}
}

static bool active_checks(const struct upstream_srv *s)
{
	return s->svc && s->svc->check.protocol != CONFIG_CHECK_NONE;
}

void upstream_srv_result(struct upstream_srv *s, bool ok, const char *why)
{
	if (!ok) {
		failed(s, why);
		return;
	}
	/* a down server comes back by its checks when it has some */
	if (s->state != UPSTREAM_DOWN || !active_checks(s))
		went_up(s, "a connection was greeted");
}

/* ---- choosing -------------------------------------------------------- */

/* Does S take new connections now?  A down server without active checks
 * takes one when its rest is over (a probe). */
static bool usable(const struct upstream_srv *s, const struct timespec *now)
{
	if (s->state != UPSTREAM_DOWN)
		return true;
	return !active_checks(s) && !ts_before(now, &s->rest_until);
}

static struct upstream_svc *svc_find(const struct upstream_set *u,
				     const char *name)
{
	struct upstream_svc *v;

	TAILQ_FOREACH(v, &u->svcs, entry)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

struct upstream_srv *upstream_pick(struct upstream_set *u, const char *svc,
				   const struct upstream_srv *not)
{
	struct upstream_svc *v = svc_find(u, svc);
	struct upstream_srv *s, *best = NULL, *order[SRV_MAX];
	struct timespec now;
	size_t n = 0, i, start;

	if (!v)
		return NULL;
	now_mono(&now);
	TAILQ_FOREACH(s, &v->srvs, entry)
		if (n < SRV_MAX)
			order[n++] = s;
	start = v->balance == CONFIG_BALANCE_FIRST || !n ? 0 : v->rr % n;
	for (i = 0; i < n; i++) {
		s = order[(start + i) % n];
		if (s == not || !usable(s, &now))
			continue;
		if (v->balance != CONFIG_BALANCE_LEASTCONN) {
			best = s;
			break;
		}
		if (!best || s->active < best->active)
			best = s;
	}
	if (!best)
		return NULL;
	if (v->balance != CONFIG_BALANCE_FIRST) {
		for (i = 0; i < n && order[i] != best; i++)
			;
		v->rr = i + 1;
	}
	if (best->state == UPSTREAM_DOWN) {
		/* a probe: the next one an interval from now */
		best->rest_until = now;
		ts_add_ms(&best->rest_until, v->check.interval_ms);
	}
	best->refs++;
	best->active++;
	best->connections++;
	return best;
}

static void srv_free(struct upstream_srv *s)
{
	if (s->io)
		event_free(s->io);
	if (s->fd >= 0)
		close(s->fd);
	if (s->timer)
		event_free(s->timer);
	free(s);
}

static void srv_unref(struct upstream_srv *s)
{
	if (!--s->refs)
		srv_free(s);
}

void upstream_srv_done(struct upstream_srv *s)
{
	s->active--;
	srv_unref(s);
}

const struct config_sockaddr *upstream_srv_addr(const struct upstream_srv *s)
{
	return &s->addr;
}

/* ---- active checks --------------------------------------------------- */

/* End the check's socket.  RESET: it timed out mid-way, nothing to be
 * polite about; else a FIN. */
static void check_close(struct upstream_srv *s, bool reset)
{
	if (s->io) {
		event_free(s->io);
		s->io = NULL;
	}
	if (s->fd >= 0) {
		if (reset) {
			static const struct linger rst = { 1, 0 };

			setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &rst,
				   sizeof(rst));
		}
		close(s->fd);
		s->fd = -1;
	}
	s->phase = CK_IDLE;
}

/* The verdict of a check: OK, or not with WHY. */
static void check_verdict(struct upstream_srv *s, bool ok, const char *why)
{
	struct timespec now;

	now_mono(&now);
	s->checks++;
	s->checked = true;
	s->check_ok = ok;
	s->check_us = ts_us(&s->started, &now);
	gettimeofday(&s->check_at, NULL);
	snprintf(s->check_error, sizeof(s->check_error), "%s", ok ? "" : why);
	if (!ok) {
		s->checks_failed++;
		failed(s, why);
		return;
	}
	if (s->state != UPSTREAM_DOWN) {
		went_up(s, "check");
		return;
	}
	if (++s->oks >= (s->svc ? s->svc->check.rise : 1)) {
		char how[64];

		snprintf(how, sizeof(how), "%u good checks", s->oks);
		went_up(s, how);
	}
}

static void check_io(evutil_socket_t fd, short what, void *arg);

/* Wait for WHAT on the check's socket until its deadline. */
static int check_wait(struct upstream_srv *s, short what)
{
	struct timespec now;
	struct timeval tv;
	uint64_t us;

	if (s->io)
		event_free(s->io);
	s->io = event_new(s->set->base, s->fd, what, check_io, s);
	if (!s->io)
		return -ENOMEM;
	now_mono(&now);
	us = ts_before(&now, &s->deadline) ? ts_us(&now, &s->deadline) : 0;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return event_add(s->io, &tv) < 0 ? -ENOMEM : 0;
}

/* Say goodbye with BYE (may be NULL: nothing to say), then wait for the
 * server's FIN. */
static void check_bye(struct upstream_srv *s, const void *bye, size_t len)
{
	if (bye && len)
		(void)send(s->fd, bye, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(s->fd, SHUT_WR);
	s->phase = CK_BYE;
	/* the goodbye gets a timeout of its own, from now */
	now_mono(&s->deadline);
	ts_add_ms(&s->deadline, s->svc ? s->svc->check.timeout_ms : 1000);
	if (check_wait(s, EV_READ) < 0)
		check_close(s, false);
}

/* The mysql login of the daemon's user with no password, packet 1: a
 * HandshakeResponse41 (protocol 4.1, secure connection, utf8). */
static size_t mysql_login(const struct upstream_srv *s, uint8_t *p,
			  size_t size)
{
	const char *user = s->set->user ? s->set->user : "nsrelay";
	size_t ulen = strnlen(user, 64), len = 4 + 4 + 1 + 23 + ulen + 1 + 1;
	uint32_t caps = 0x00000001 | 0x00000200 | 0x00008000;

	if (len + 4 > size)
		return 0;
	memset(p, 0, len + 4);
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = 1;				/* sequence */
	p[4] = (uint8_t)caps;
	p[5] = (uint8_t)(caps >> 8);
	p[6] = (uint8_t)(caps >> 16);
	p[7] = (uint8_t)(caps >> 24);
	p[11] = 0x01;				/* max packet 16 MiB */
	p[12] = 33;				/* utf8_general_ci */
	memcpy(p + 36, user, ulen);		/* then NUL, auth length 0 */
	return len + 4;
}

/* Judge the greeting in s->buf.  1 good, 0 need more, -1 bad (WHY). */
static int greeting(struct upstream_srv *s, char *why, size_t why_len)
{
	const uint8_t *b = (const uint8_t *)s->buf;
	const char *eol;
	size_t n = s->len, plen;

	switch (s->svc->check.protocol) {
	case CONFIG_CHECK_MYSQL:
		if (n < 5)
			return 0;
		plen = b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16;
		if (b[4] == 0xff) {
			/* an error packet: code, then a message */
			unsigned code = n >= 7 ? b[5] | b[6] << 8 : 0;
			size_t m = plen > 3 && n > 7 ? n - 7 : 0;

			if (m > plen - 3)
				m = plen - 3;
			if (m && b[7] == '#' && m > 6) {
				b += 6;		/* "#HY000", the SQL state */
				m -= 6;
			}
			snprintf(why, why_len, "error packet %u: %.*s", code,
				 (int)(m > 80 ? 80 : m), (const char *)b + 7);
			return -1;
		}
		if (b[3] != 0 || plen < 1 || b[4] != 10) {
			snprintf(why, why_len, "not a MySQL handshake "
				 "(protocol %u)", b[4]);
			return -1;
		}
		return 1;
	case CONFIG_CHECK_SMTP:
	case CONFIG_CHECK_IMAP:
		eol = memchr(s->buf, '\n', n);
		if (!eol && n < sizeof(s->buf))
			return 0;
		n = eol ? (size_t)(eol - s->buf) : n;
		while (n && (s->buf[n - 1] == '\r' || s->buf[n - 1] == '\n'))
			n--;
		if (s->svc->check.protocol == CONFIG_CHECK_SMTP ?
		    n >= 3 && !memcmp(s->buf, "220", 3) &&
		    (n == 3 || s->buf[3] == ' ' || s->buf[3] == '-') :
		    (n >= 4 && !memcmp(s->buf, "* OK", 4)) ||
		    (n >= 9 && !memcmp(s->buf, "* PREAUTH", 9)))
			return 1;
		snprintf(why, why_len, "greeting \"%.*s\"",
			 (int)(n > 80 ? 80 : n), s->buf);
		for (char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		return -1;
	default:
		return 1;
	}
}

static void check_greeting(struct upstream_srv *s)
{
	static const char quit_smtp[] = "QUIT\r\n";
	static const char quit_imap[] = "a LOGOUT\r\n";
	char why[160];
	uint8_t login[128];
	size_t len;
	int r = greeting(s, why, sizeof(why));

	if (r == 0) {
		/* more to come, within what is left of the timeout: a server
		 * that trickles its greeting does not push the deadline */
		if (check_wait(s, EV_READ) < 0) {
			check_verdict(s, false, "out of memory");
			check_close(s, false);
		}
		return;
	}
	check_verdict(s, r > 0, why);
	if (r < 0) {
		check_bye(s, NULL, 0);
		return;
	}
	switch (s->svc->check.protocol) {
	case CONFIG_CHECK_MYSQL:
		len = mysql_login(s, login, sizeof(login));
		if (!len ||
		    send(s->fd, login, len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
		    (ssize_t)len) {
			check_bye(s, NULL, 0);
			return;
		}
		s->len = 0;
		s->phase = CK_LOGIN;
		now_mono(&s->deadline);
		ts_add_ms(&s->deadline, s->svc->check.timeout_ms);
		if (check_wait(s, EV_READ) < 0)
			check_close(s, false);
		return;
	case CONFIG_CHECK_SMTP:
		check_bye(s, quit_smtp, sizeof(quit_smtp) - 1);
		return;
	default:
		check_bye(s, quit_imap, sizeof(quit_imap) - 1);
		return;
	}
}

static void check_io(evutil_socket_t fd, short what, void *arg)
{
	static const uint8_t com_quit[] = { 1, 0, 0, 0, 1 };
	struct upstream_srv *s = arg;
	char scratch[CHECK_BUF], why[160];
	int err = 0;
	socklen_t elen = sizeof(err);
	ssize_t n;

	(void)fd;
	if (what & EV_TIMEOUT) {
		bool verdict = s->phase == CK_CONNECT || s->phase == CK_GREET;

		if (s->phase == CK_CONNECT)
			check_verdict(s, false, "connect timed out");
		else if (s->phase == CK_GREET)
			check_verdict(s, false, "no greeting in time");
		/* a server that has not greeted in time is cut; one that was
		 * told goodbye (our FIN is out) is just left */
		check_close(s, verdict);
		return;
	}
	switch (s->phase) {
	case CK_CONNECT:
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			snprintf(why, sizeof(why), "connect: %s",
				 strerror(err));
			check_verdict(s, false, why);
			check_close(s, false);
			return;
		}
		/* a service with proxy_protocol: the server expects a
		 * header first; a check has no client.  v2: LOCAL.  v1:
		 * the check's own connection, its addresses from the
		 * socket (Postfix 3.7 refuses "PROXY UNKNOWN" with a 421,
		 * which would take it out of service), UNKNOWN over a
		 * unix socket.  A fresh socket's buffer takes it whole. */
		if (s->svc->proxy != CONFIG_PROXY_OFF) {
			struct sockaddr_storage me, it;
			socklen_t ml = sizeof(me), il = sizeof(it);
			bool inet = s->svc->proxy == CONFIG_PROXY_V1 &&
				    getsockname(s->fd, (struct sockaddr *)&me,
						&ml) == 0 &&
				    getpeername(s->fd, (struct sockaddr *)&it,
						&il) == 0 &&
				    (me.ss_family == AF_INET ||
				     me.ss_family == AF_INET6);
			uint8_t hdr[PROXYHDR_MAX];
			int hl = proxyhdr_build(hdr, sizeof(hdr),
				(enum proxyhdr_version)s->svc->proxy,
				inet ? (struct sockaddr *)&me : NULL,
				inet ? (struct sockaddr *)&it : NULL,
				NULL, NULL, -1);

			if (hl > 0 && send(s->fd, hdr, (size_t)hl,
					   MSG_NOSIGNAL | MSG_DONTWAIT) != hl) {
				snprintf(why, sizeof(why), "PROXY header: %s",
					 strerror(errno));
				check_verdict(s, false, why);
				check_close(s, false);
				return;
			}
		}
		if (s->svc->check.protocol == CONFIG_CHECK_TCP) {
			check_verdict(s, true, NULL);
			check_close(s, false);
			return;
		}
		s->phase = CK_GREET;
		s->len = 0;
		if (check_wait(s, EV_READ) < 0) {
			check_verdict(s, false, "out of memory");
			check_close(s, false);
		}
		return;
	case CK_GREET:
		n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len,
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (check_wait(s, EV_READ) < 0)
				check_close(s, false);
			return;
		}
		if (n <= 0) {
			snprintf(why, sizeof(why), "%s before the greeting",
				 n ? strerror(errno) : "closed");
			check_verdict(s, false, why);
			check_close(s, false);
			return;
		}
		s->len += (size_t)n;
		check_greeting(s);
		return;
	case CK_LOGIN:
		n = recv(s->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (check_wait(s, EV_READ) < 0)
				check_close(s, false);
			return;
		}
		/* OK packet: logged in, leave with COM_QUIT; anything else
		 * (access denied, an auth switch): just leave */
		if (n >= 5 && scratch[4] == 0)
			check_bye(s, com_quit, sizeof(com_quit));
		else if (n > 0)
			check_bye(s, NULL, 0);
		else
			check_close(s, false);
		return;
	case CK_BYE:
		n = recv(s->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) {
			if (check_wait(s, EV_READ) < 0)
				check_close(s, false);
			return;
		}
		check_close(s, false);	/* its FIN, or an error: done */
		return;
	default:
		return;
	}
}

static void check_start(struct upstream_srv *s)
{
	const struct config_check *ck = &s->svc->check;
	char why[160];
	int fd, one = 1;

	if (s->phase != CK_IDLE) {
		/* the last one is still saying goodbye: leave it */
		check_close(s, false);
	}
	now_mono(&s->started);
	s->deadline = s->started;
	ts_add_ms(&s->deadline, ck->timeout_ms);
	fd = socket(s->addr.sa.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		/* our shortage, not the server's fault: no verdict */
		log_warnx("%s: server %s: check: socket: %s", svc_name(s),
			  s->addr.text, strerror(errno));
		return;
	}
	if (s->addr.sa.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->fd = fd;
	s->phase = CK_CONNECT;
	if (connect(fd, (const struct sockaddr *)&s->addr.sa, s->addr.len) &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		check_verdict(s, false, why);
		check_close(s, false);
		return;
	}
	/* connected or not, the socket says so by being writable (or by an
	 * error) */
	if (check_wait(s, EV_WRITE) < 0) {
		check_close(s, false);
		return;
	}
}

static void check_timer(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_srv *s = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (!active_checks(s))
		return;
	ms_tv(s->svc->check.interval_ms, &tv);
	evtimer_add(s->timer, &tv);
	check_start(s);
}

/* (Re)start S's checks, the first in DELAY_MS. */
static void checks_arm(struct upstream_srv *s, uint64_t delay_ms)
{
	struct timeval tv;

	check_close(s, true);
	if (!active_checks(s)) {
		if (s->timer)
			evtimer_del(s->timer);
		return;
	}
	if (!s->timer && !(s->timer = evtimer_new(s->set->base, check_timer,
						   s))) {
		log_warnx("%s: server %s: no checks: out of memory",
			  svc_name(s), s->addr.text);
		return;
	}
	ms_tv(delay_ms, &tv);
	evtimer_add(s->timer, &tv);
}

/* ---- the set --------------------------------------------------------- */

struct upstream_set *upstream_set_new(struct event_base *base)
{
	struct upstream_set *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->base = base;
	TAILQ_INIT(&u->svcs);
	LIST_INIT(&u->names);
	return u;
}

/* S leaves its service: no more checks; freed with its last connection. */
static void srv_detach(struct upstream_srv *s)
{
	check_close(s, true);
	if (s->timer) {
		event_free(s->timer);
		s->timer = NULL;
	}
	s->svc = NULL;
	srv_unref(s);
}

static void svc_free(struct upstream_svc *v)
{
	struct upstream_srv *s;

	while ((s = TAILQ_FIRST(&v->srvs))) {
		TAILQ_REMOVE(&v->srvs, s, entry);
		srv_detach(s);
	}
	free(v->name);
	free(v);
}

/* The server of V that came from entry TEXT: an address as written, or
 * for a name (NAME_TEXT not NULL) the resolved address TEXT of it. */
static struct upstream_srv *srv_find(const struct upstream_svc *v,
				     const char *text, const char *name_text)
{
	struct upstream_srv *s;

	if (!v)
		return NULL;
	TAILQ_FOREACH(s, &v->srvs, entry)
		if (!strcmp(s->addr.text, text) &&
		    !strcmp(s->name, name_text ? name_text : ""))
			return s;
	return NULL;
}

static struct upstream_srv *srv_new(struct upstream_set *u,
				    struct upstream_svc *v,
				    const struct config_sockaddr *a, size_t idx,
				    const char *name_text)
{
	struct upstream_srv *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->set = u;
	s->fd = -1;
	s->refs = 1;
	s->addr = *a;
	s->idx = idx;
	snprintf(s->name, sizeof(s->name), "%s", name_text ? name_text : "");
	s->state = UPSTREAM_UP;
	s->svc = v;
	return s;
}

/* ---- host names -------------------------------------------------------
 *
 * A name of a service's list is resolved (A and AAAA, with evdns on the
 * loop: a connection never waits for it) when the config is taken, then
 * again after the answer's TTL, at most dns.refresh later.  Each address
 * is a server, placed where the name is in the list; an address that
 * stays keeps its server and its state, one that goes takes its server out
 * (its connections go on).  A name that stops resolving keeps its last
 * addresses, said once, until it resolves again; until its first answer
 * it has none (a client of a service with no other server is reset). */

static void name_resolve(struct upstream_name *nm);

static void name_free(struct upstream_name *nm)
{
	LIST_REMOVE(nm, entry);
	if (nm->timer)
		event_free(nm->timer);
	free(nm);
}

/* NM leaves the config: freed now, or when its requests end. */
static void name_gone(struct upstream_name *nm)
{
	nm->svc = NULL;
	if (nm->timer)
		evtimer_del(nm->timer);
	if (!nm->pending && !nm->starting)
		name_free(nm);
}

static void name_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	name_resolve(arg);
}

static void name_again(struct upstream_name *nm, uint64_t ms)
{
	struct timeval tv;

	if (ms < TTL_MIN_MS)
		ms = TTL_MIN_MS;
	ms_tv(ms, &tv);
	evtimer_add(nm->timer, &tv);
}

/* Has the answer ADDR (LEN) of NM a server in V?  Its server, or NULL. */
static struct upstream_srv *name_srv(struct upstream_svc *v,
				     const struct upstream_name *nm,
				     const char *text)
{
	return srv_find(v, text, nm->at.text);
}

/* The answer is complete: make the servers of NM what it says. */
static void name_done(struct upstream_name *nm)
{
	struct upstream_svc *v = nm->svc;
	struct upstream_srv *s, *next, *after = NULL;
	struct config_sockaddr a[NAME_ADDRS];
	size_t n = 0, kept = 0, added = 0, gone = 0, k = 0;
	uint64_t again = nm->set->refresh_ms;

	if (!nm->n_got) {
		size_t have = 0;

		TAILQ_FOREACH(s, &v->srvs, entry)
			have += s->idx == nm->idx;
		if (!nm->failing)
			log_warnx("%s: %s does not resolve (%s): %zu "
				  "addresses of it kept until it does",
				  v->name, nm->at.text,
				  evdns_err_to_string(nm->err), have);
		nm->failing = true;
		name_again(nm, again);
		return;
	}
	if (nm->failing)
		log_info("%s: %s resolves again", v->name, nm->at.text);
	nm->failing = false;
	for (size_t i = 0; i < nm->n_got; i++) {
		struct config_sockaddr *c = &a[n];
		char ip[INET6_ADDRSTRLEN];

		memset(c, 0, sizeof(*c));
		memcpy(&c->sa, &nm->got[i], nm->got_len[i]);
		c->len = nm->got_len[i];
		if (c->sa.ss_family == AF_INET) {
			struct sockaddr_in *in = (void *)&c->sa;

			in->sin_port = htons((uint16_t)nm->at.port);
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			snprintf(c->text, sizeof(c->text), "%s:%u", ip,
				 nm->at.port);
		} else {
			struct sockaddr_in6 *in6 = (void *)&c->sa;

			in6->sin6_port = htons((uint16_t)nm->at.port);
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			snprintf(c->text, sizeof(c->text), "[%s]:%u", ip,
				 nm->at.port);
		}
		c->line = nm->at.line;
		c->col = nm->at.col;
		for (k = 0; k < n && strcmp(a[k].text, c->text); k++)
			;
		if (k == n)
			n++;		/* not a duplicate */
	}
	/* the servers of the name that are no longer in the answer go */
	for (s = TAILQ_FIRST(&v->srvs); s; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->idx != nm->idx)
			continue;
		for (k = 0; k < n && strcmp(a[k].text, s->addr.text); k++)
			;
		if (k < n) {
			kept++;
			continue;
		}
		log_info("%s: %s no longer has %s: no new connection goes "
			 "there", v->name, nm->at.text, s->addr.text);
		TAILQ_REMOVE(&v->srvs, s, entry);
		v->n--;
		srv_detach(s);
		gone++;
	}
	/* new ones after the last server of this or an earlier entry */
	TAILQ_FOREACH(s, &v->srvs, entry)
		if (s->idx <= nm->idx)
			after = s;
	for (k = 0; k < n; k++) {
		if ((s = name_srv(v, nm, a[k].text))) {
			after = s;
			continue;
		}
		if (v->n >= SRV_MAX ||
		    !(s = srv_new(nm->set, v, &a[k], nm->idx, nm->at.text)))
			break;
		if (after)
			TAILQ_INSERT_AFTER(&v->srvs, after, s, entry);
		else
			TAILQ_INSERT_HEAD(&v->srvs, s, entry);
		after = s;
		v->n++;
		added++;
		checks_arm(s, v->check.interval_ms * added / (n + 1));
	}
	if (added || gone)
		log_info("%s: %s resolved: %zu addresses (%zu new, %zu gone)",
			 v->name, nm->at.text, kept + added, added, gone);
	if (nm->ttl >= 0 && (uint64_t)nm->ttl * 1000 < again)
		again = (uint64_t)nm->ttl * 1000;
	name_again(nm, again);
}

static void name_answer(int result, char type, int count, int ttl,
			void *addresses, void *arg)
{
	struct upstream_name *nm = arg;

	nm->pending--;
	if (result == DNS_ERR_NONE) {
		for (int i = 0; i < count && nm->n_got < NAME_ADDRS; i++) {
			struct sockaddr_storage *ss = &nm->got[nm->n_got];

			memset(ss, 0, sizeof(*ss));
			if (type == DNS_IPv4_A) {
				struct sockaddr_in *in = (void *)ss;

				in->sin_family = AF_INET;
				memcpy(&in->sin_addr,
				       (const char *)addresses + 4 * i, 4);
				nm->got_len[nm->n_got++] = sizeof(*in);
			} else if (type == DNS_IPv6_AAAA) {
				struct sockaddr_in6 *in6 = (void *)ss;

				in6->sin6_family = AF_INET6;
				memcpy(&in6->sin6_addr,
				       (const char *)addresses + 16 * i, 16);
				nm->got_len[nm->n_got++] = sizeof(*in6);
			}
		}
		if (count && (nm->ttl < 0 || ttl < nm->ttl))
			nm->ttl = ttl;
	} else if (result != DNS_ERR_NODATA || !nm->err) {
		nm->err = result;
	}
	if (nm->pending || nm->starting)
		return;
	if (!nm->svc) {
		name_free(nm);		/* left the config meanwhile */
		return;
	}
	name_done(nm);
}

static void name_resolve(struct upstream_name *nm)
{
	struct evdns_base *dns = nm->set->dns;

	if (!nm->svc || nm->pending || !dns)
		return;
	nm->n_got = 0;
	nm->ttl = -1;
	nm->err = 0;
	nm->starting = true;
	nm->pending = 2;
	if (!evdns_base_resolve_ipv4(dns, nm->host, DNS_QUERY_NO_SEARCH,
				     name_answer, nm))
		nm->pending--;
	if (!evdns_base_resolve_ipv6(dns, nm->host, DNS_QUERY_NO_SEARCH,
				     name_answer, nm))
		nm->pending--;
	nm->starting = false;
	if (nm->pending)
		return;
	if (!nm->svc)
		name_free(nm);
	else
		name_done(nm);		/* answered at once, or not asked */
}

/* The resolver: CFG's dns.servers, else /etc/resolv.conf's.  0 or -errno;
 * a failure leaves names unresolved (said once by the caller). */
static int dns_setup(struct upstream_set *u, const struct config *cfg)
{
	int r = 0;

	u->refresh_ms = cfg->dns.refresh_ms ? cfg->dns.refresh_ms :
			CONFIG_DEFAULT_DNS_REFRESH_MS;
	if (!u->dns) {
		u->dns = evdns_base_new(u->base, 0);
		if (!u->dns)
			return -ENOMEM;
	} else {
		evdns_base_clear_nameservers_and_suspend(u->dns);
	}
	if (cfg->dns.n_servers) {
		for (size_t i = 0; i < cfg->dns.n_servers; i++)
			if (evdns_base_nameserver_sockaddr_add(u->dns,
			    (const struct sockaddr *)&cfg->dns.servers[i].sa,
			    cfg->dns.servers[i].len, 0) < 0)
				r = -EINVAL;
	} else if (evdns_base_resolv_conf_parse(u->dns,
						DNS_OPTION_NAMESERVERS,
						"/etc/resolv.conf")) {
		r = -ENOENT;
	}
	evdns_base_resume(u->dns);
	return r;
}

static bool has_names(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		for (size_t j = 0; j < cfg->services[i].n_upstreams; j++)
			if (cfg->services[i].upstreams[j].sa.ss_family ==
			    AF_UNSPEC)
				return true;
	return false;
}

/* ---- taking a config ------------------------------------------------- */

int upstream_set_config(struct upstream_set *u, const struct config *cfg)
{
	struct upstream_svc_list fresh;
	struct upstream_name_list made;
	struct upstream_name *nm, *nnext;
	struct upstream_svc *v, *old;
	struct upstream_srv *s, *snext;
	size_t total = 0, k = 0;
	char *user = strdup(cfg->user ? cfg->user : "nsrelay");

	TAILQ_INIT(&fresh);
	LIST_INIT(&made);
	if (!user)
		return -ENOMEM;
	/* first everything that may fail, the old set untouched */
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct config_service *c = &cfg->services[i];

		v = calloc(1, sizeof(*v));
		if (!v || !(v->name = strdup(c->name))) {
			free(v);
			goto nomem;
		}
		TAILQ_INIT(&v->srvs);
		TAILQ_INSERT_TAIL(&fresh, v, entry);
		v->balance = c->balance;
		v->check = c->check;
		v->proxy = c->proxy_protocol;
		v->source = c->source;
		old = svc_find(u, c->name);
		for (size_t j = 0; j < c->n_upstreams; j++) {
			const struct config_sockaddr *a = &c->upstreams[j];

			if (a->sa.ss_family == AF_UNSPEC) {
				nm = calloc(1, sizeof(*nm));
				if (!nm)
					goto nomem;
				LIST_INSERT_HEAD(&made, nm, entry);
				nm->set = u;
				nm->svc = v;
				nm->idx = j;
				nm->at = *a;
				snprintf(nm->host, sizeof(nm->host), "%.*s",
					 (int)(strrchr(a->text, ':') - a->text),
					 a->text);
				nm->timer = evtimer_new(u->base, name_timer, nm);
				if (!nm->timer)
					goto nomem;
				continue;
			}
			if (srv_find(old, a->text, NULL))
				continue;	/* moved over below */
			s = srv_new(u, v, a, j, NULL);
			if (!s)
				goto nomem;
			TAILQ_INSERT_TAIL(&v->srvs, s, entry);
		}
	}
	if (has_names(cfg) && dns_setup(u, cfg) < 0)
		log_warnx("dns: %s: host names will not resolve",
			  u->dns ? "no usable name server" : "out of memory");
	/* then the swap: servers that stay move to their new service, in
	 * the order of the file; the addresses of a name that stays too */
	v = TAILQ_FIRST(&fresh);
	for (size_t i = 0; i < cfg->n_services; i++, v = TAILQ_NEXT(v, entry)) {
		const struct config_service *c = &cfg->services[i];
		struct upstream_srv_list mine;

		TAILQ_INIT(&mine);
		old = svc_find(u, c->name);
		for (size_t j = 0; j < c->n_upstreams; j++) {
			const struct config_sockaddr *a = &c->upstreams[j];

			if (a->sa.ss_family == AF_UNSPEC) {
				for (s = old ? TAILQ_FIRST(&old->srvs) : NULL;
				     s; s = snext) {
					snext = TAILQ_NEXT(s, entry);
					if (strcmp(s->name, a->text))
						continue;
					TAILQ_REMOVE(&old->srvs, s, entry);
					s->svc = v;
					s->idx = j;
					TAILQ_INSERT_TAIL(&mine, s, entry);
				}
				continue;
			}
			s = srv_find(old, a->text, NULL);
			if (s) {
				TAILQ_REMOVE(&old->srvs, s, entry);
				s->svc = v;
				s->addr = *a;
				s->idx = j;
			} else {
				s = srv_find(v, a->text, NULL);
				TAILQ_REMOVE(&v->srvs, s, entry);
			}
			TAILQ_INSERT_TAIL(&mine, s, entry);
		}
		TAILQ_CONCAT(&v->srvs, &mine, entry);
		v->n = 0;
		TAILQ_FOREACH(s, &v->srvs, entry)
			v->n++;
		if (v->check.protocol != CONFIG_CHECK_NONE)
			total += v->n;
	}
	while ((old = TAILQ_FIRST(&u->svcs))) {
		TAILQ_REMOVE(&u->svcs, old, entry);
		svc_free(old);		/* what is left in it has gone */
	}
	TAILQ_CONCAT(&u->svcs, &fresh, entry);
	free(u->user);
	u->user = user;
	/* the old names go (their servers moved over); the new ones are
	 * resolved from now */
	for (nm = LIST_FIRST(&u->names); nm; nm = nnext) {
		nnext = LIST_NEXT(nm, entry);
		if (nm->svc)
			name_gone(nm);
	}
	while ((nm = LIST_FIRST(&made))) {
		LIST_REMOVE(nm, entry);
		LIST_INSERT_HEAD(&u->names, nm, entry);
		name_resolve(nm);
	}
	/* checks spread over the interval, one server after the other */
	TAILQ_FOREACH(v, &u->svcs, entry) {
		TAILQ_FOREACH(s, &v->srvs, entry) {
			uint64_t delay = 0;

			if (v->check.protocol != CONFIG_CHECK_NONE && total)
				delay = v->check.interval_ms * k++ / total;
			checks_arm(s, delay);
		}
	}
	return 0;
nomem:
	while ((v = TAILQ_FIRST(&fresh))) {
		TAILQ_REMOVE(&fresh, v, entry);
		svc_free(v);
	}
	while ((nm = LIST_FIRST(&made)))
		name_free(nm);
	free(user);
	return -ENOMEM;
}

void upstream_set_free(struct upstream_set *u)
{
	struct upstream_svc *v;
	struct upstream_name *nm;

	if (!u)
		return;
	/* no answer comes after this: requests in flight are dropped */
	if (u->dns)
		evdns_base_free(u->dns, 0);
	while ((nm = LIST_FIRST(&u->names)))
		name_free(nm);
	while ((v = TAILQ_FIRST(&u->svcs))) {
		TAILQ_REMOVE(&u->svcs, v, entry);
		svc_free(v);
	}
	free(u->user);
	free(u);
}

void upstream_foreach(const struct upstream_set *u,
		      void (*fn)(void *arg, const struct upstream_info *i,
				 bool first_of_service),
		      void *arg)
{
	const struct upstream_svc *v;
	const struct upstream_srv *s;

	TAILQ_FOREACH(v, &u->svcs, entry) {
		bool first = true;

		TAILQ_FOREACH(s, &v->srvs, entry) {
			struct upstream_info i = {
				.service = v->name,
				.balance = v->balance,
				.check = v->check.protocol,
				.proxy = v->proxy,
				.source = v->source,
				.server = s->addr.text,
				.name = s->name[0] ? s->name : NULL,
				.state = s->state,
				.active = s->active,
				.connections = s->connections,
				.failures = s->failures,
				.checks = s->checks,
				.checks_failed = s->checks_failed,
				.checked = s->checked,
				.check_ok = s->check_ok,
				.check_error = s->check_error,
				.check_at = s->check_at,
				.check_us = s->check_us,
			};

			fn(arg, &i, first);
			first = false;
		}
	}
}
