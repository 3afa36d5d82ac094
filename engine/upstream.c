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
 * t/upstream-mariadb.t).  We never send before the server has greeted us,
 * and a check that ends leaves with a FIN, never a reset, unless it timed
 * out.
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
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "engine/log.h"
#include "engine/upstream.h"

#define CHECK_BUF	512		/* a greeting's first line, at most */

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

struct upstream_svc {
	TAILQ_ENTRY(upstream_svc) entry;
	char *name;
	enum config_balance balance;
	struct config_check check;
	struct upstream_srv_list srvs;
	size_t n;
	size_t rr;			/* round robin: the next to try */
};

TAILQ_HEAD(upstream_svc_list, upstream_svc);

struct upstream_set {
	struct event_base *base;
	struct upstream_svc_list svcs;
	char *user;			/* the mysql check's login */
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
	struct upstream_srv *s, *best = NULL, *order[CONFIG_MAX_UPSTREAMS];
	struct timespec now;
	size_t n = 0, i, start;

	if (!v)
		return NULL;
	now_mono(&now);
	TAILQ_FOREACH(s, &v->srvs, entry)
		if (n < CONFIG_MAX_UPSTREAMS)
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

	if (r == 0)
		return;			/* more to come */
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
		if (s->phase == CK_CONNECT)
			check_verdict(s, false, "connect timed out");
		else if (s->phase == CK_GREET)
			check_verdict(s, false, "no greeting in time");
		check_close(s, true);
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
		if (s->svc->check.protocol == CONFIG_CHECK_TCP) {
			check_verdict(s, true, NULL);
			check_close(s, false);
			return;
		}
		s->phase = CK_GREET;
		s->len = 0;
		if (check_wait(s, EV_READ | EV_PERSIST) < 0) {
			check_verdict(s, false, "out of memory");
			check_close(s, false);
		}
		return;
	case CK_GREET:
		n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len,
			 MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
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
		/* the last one is still saying goodbye: cut it short */
		check_close(s, true);
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

static struct upstream_srv *srv_find(const struct upstream_svc *v,
				     const char *text)
{
	struct upstream_srv *s;

	if (!v)
		return NULL;
	TAILQ_FOREACH(s, &v->srvs, entry)
		if (!strcmp(s->addr.text, text))
			return s;
	return NULL;
}

int upstream_set_config(struct upstream_set *u, const struct config *cfg)
{
	struct upstream_svc_list fresh;
	struct upstream_svc *v, *old;
	struct upstream_srv *s, *take[CONFIG_MAX_UPSTREAMS];
	size_t total = 0, k = 0;
	char *user = strdup(cfg->user ? cfg->user : "nsrelay");

	TAILQ_INIT(&fresh);
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
		old = svc_find(u, c->name);
		for (size_t j = 0; j < c->n_upstreams; j++) {
			if (srv_find(old, c->upstreams[j].text))
				continue;	/* moved over below */
			s = calloc(1, sizeof(*s));
			if (!s)
				goto nomem;
			s->set = u;
			s->fd = -1;
			s->refs = 1;
			s->addr = c->upstreams[j];
			s->state = UPSTREAM_UP;
			s->svc = v;
			TAILQ_INSERT_TAIL(&v->srvs, s, entry);
		}
	}
	/* then the swap: servers that stay move to their new service, in
	 * the order of the file */
	v = TAILQ_FIRST(&fresh);
	for (size_t i = 0; i < cfg->n_services; i++, v = TAILQ_NEXT(v, entry)) {
		const struct config_service *c = &cfg->services[i];

		old = svc_find(u, c->name);
		for (size_t j = 0; j < c->n_upstreams; j++) {
			s = srv_find(old, c->upstreams[j].text);
			if (s) {
				TAILQ_REMOVE(&old->srvs, s, entry);
				s->svc = v;
				s->addr = c->upstreams[j];
			} else {
				s = srv_find(v, c->upstreams[j].text);
				TAILQ_REMOVE(&v->srvs, s, entry);
			}
			take[j] = s;
		}
		for (size_t j = 0; j < c->n_upstreams; j++)
			TAILQ_INSERT_TAIL(&v->srvs, take[j], entry);
		v->n = c->n_upstreams;
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
	free(user);
	return -ENOMEM;
}

void upstream_set_free(struct upstream_set *u)
{
	struct upstream_svc *v;

	if (!u)
		return;
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
				.server = s->addr.text,
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
