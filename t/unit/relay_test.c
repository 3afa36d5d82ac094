/* SPDX-License-Identifier: MIT */
/* relay_test: the byte path alone (engine/relay.c), over local sockets.
 *
 * How it works
 *
 * No namespace, no listener, no daemon: the test is the listener.  It makes
 * the client's connection itself (a unix socketpair, or a TCP pair on
 * 127.0.0.1 where a reset must be seen: a unix socket has no RST), hands the
 * relay's end to relay_start(), and plays the upstream on a listening socket
 * of its own (a unix socket in a temporary directory, or TCP on an ephemeral
 * port of 127.0.0.1).  Everything runs in this one thread: turn() runs one
 * turn of the relay's event loop, waiting a few milliseconds at most, and
 * the test's own sockets are non-blocking, read and written between turns.
 * Every wait is bounded (WAIT_MS), so a broken relay fails a point instead
 * of hanging the test.
 *
 * Data is a deterministic pattern (pat()), so the receiver checks every
 * byte at its offset without keeping a copy.  Counters and the closed()
 * callback are read from the origin after each case.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/event.h>

#include "config/config.h"
#include "engine/log.h"
#include "engine/relay.h"
#include "t/unit/tap.h"

#define WAIT_MS		10000	/* bound of every wait */
#define MiB		(1024 * 1024)

static struct event_base *base;
static struct relay_set *set;
static char tmpdir[] = "/tmp/relay_test.XXXXXX";
static unsigned shortages;

/* The details of a failed point (as diag()). */
TAP_PRINTF(1, 2)
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vline(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* ---- time and the loop ---------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One turn of the relay's loop: what is ready runs; waits at most 2 ms. */
static void turn(void)
{
	static const struct timeval tv = { 0, 2000 };

	event_base_loopexit(base, &tv);
	event_base_loop(base, EVLOOP_ONCE);
}

/* Run the loop until *FLAG becomes non-zero (or WAIT_MS pass); *FLAG. */
static unsigned turn_until(const unsigned *flag)
{
	int64_t end = now_ms() + WAIT_MS;

	while (!*flag && now_ms() < end)
		turn();
	return *flag;
}

/* ---- the pattern ---------------------------------------------------- */

static uint8_t pat(unsigned seed, uint64_t i)
{
	uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + seed * 0x85ebca6bull;

	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (i & 7)));
}

static void fill(unsigned seed, uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t k = 0; k < n; k++)
		buf[k] = pat(seed, off + k);
}

/* ---- an origin that counts its closed() calls ------------------------ */

struct origin {
	struct relay_origin o;	/* first: closed() gets &o */
	struct config_service svc;
	struct relay_counters cnt;
	unsigned calls;		/* closed() calls */
	enum relay_close why;	/* the last one's reason */
};

static void origin_closed(struct relay_origin *ro, enum relay_close why)
{
	struct origin *o = (struct origin *)ro;

	o->calls++;
	o->why = why;
}

static void shortage_cb(void *arg, int err)
{
	(void)arg;
	(void)err;
	shortages++;
}

/* An origin relaying to UP, with the given timeouts (ms). */
static void origin_init(struct origin *o, const struct config_sockaddr *up,
			uint64_t idle_ms, uint64_t fin_ms)
{
	memset(o, 0, sizeof(*o));
	o->svc.name = (char *)"test";
	o->svc.upstream = *up;
	o->svc.connect_timeout_ms = 2000;
	o->svc.idle_timeout_ms = idle_ms;
	o->svc.fin_timeout_ms = fin_ms;
	o->o.ns_name = "unit";
	o->o.svc = &o->svc;
	o->o.cnt = &o->cnt;
	o->o.closed = origin_closed;
}

/* ---- sockets -------------------------------------------------------- */

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void set_int(int fd, int level, int name, int val)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)) < 0)
		diag("setsockopt(%d, %d): %s", level, name, strerror(errno));
}

static void reset_close(int fd)
{
	struct linger l = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* An upstream: a listening socket and the address the relay connects to. */
struct upstream {
	int lfd;
	struct config_sockaddr addr;
};

static void upstream_unix(struct upstream *u, const char *name)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&u->addr.sa;

	memset(u, 0, sizeof(*u));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", tmpdir, name);
	u->addr.len = sizeof(*sun);
	snprintf(u->addr.text, sizeof(u->addr.text), "unix:%s", sun->sun_path);
	unlink(sun->sun_path);
	u->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (u->lfd < 0 || bind(u->lfd, (struct sockaddr *)sun, sizeof(*sun)) ||
	    listen(u->lfd, 16)) {
		printf("Bail out! unix upstream %s: %s\n", sun->sun_path,
		       strerror(errno));
		exit(1);
	}
	nonblock(u->lfd);
}

/* A listening TCP socket on 127.0.0.1, ephemeral port, in *SIN. */
static int tcp_listen(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)sin, sizeof(*sin)) ||
	    listen(fd, 16) || getsockname(fd, (struct sockaddr *)sin, &len)) {
		printf("Bail out! tcp listen: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

static void upstream_tcp(struct upstream *u)
{
	struct sockaddr_in sin;

	memset(u, 0, sizeof(*u));
	u->lfd = tcp_listen(&sin);
	memcpy(&u->addr.sa, &sin, sizeof(sin));
	u->addr.len = sizeof(sin);
	snprintf(u->addr.text, sizeof(u->addr.text), "127.0.0.1:%u",
		 ntohs(sin.sin_port));
	nonblock(u->lfd);
}

/* The relay's connection to U, once it has come: fd or -1. */
static int upstream_accept(struct upstream *u)
{
	int64_t end = now_ms() + WAIT_MS;

	while (now_ms() < end) {
		int fd = accept4(u->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0)
			return fd;
		turn();
	}
	return -1;
}

static void upstream_free(struct upstream *u)
{
	close(u->lfd);
	if (u->addr.sa.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&u->addr.sa)->sun_path);
}

/* A client connection: *C the client's end (non-blocking), returns the
 * relay's end.  TCP through 127.0.0.1 when TCP, else a socketpair.
 * SMALL: tiny kernel buffers between the relay and the client, so that
 * bytes pile up in the relay, not in the kernel. */
static int client_pair(int *c, bool tcp, bool small)
{
	struct sockaddr_in sin;
	int sv[2], lfd, fd;

	if (!tcp) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
			printf("Bail out! socketpair: %s\n", strerror(errno));
			exit(1);
		}
		*c = sv[0];
		nonblock(*c);
		nonblock(sv[1]);	/* as evconnlistener hands them over */
		return sv[1];
	}
	lfd = tcp_listen(&sin);
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (small)
		set_int(*c, SOL_SOCKET, SO_RCVBUF, 4096);
	if (*c < 0 || connect(*c, (struct sockaddr *)&sin, sizeof(sin)) ||
	    (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		printf("Bail out! tcp pair: %s\n", strerror(errno));
		exit(1);
	}
	close(lfd);
	if (small)
		set_int(fd, SOL_SOCKET, SO_SNDBUF, 4096);
	nonblock(*c);
	nonblock(fd);
	return fd;
}

/* Start a relayed connection of O: the client's end in *C, the upstream's
 * in *U (-1 if it did not come). */
static int start(struct origin *o, struct upstream *up, int *c, int *u,
		 bool tcp, bool small)
{
	int fd = client_pair(c, tcp, small), r;

	r = relay_start(set, &o->o, fd, NULL);
	*u = r < 0 ? -1 : upstream_accept(up);
	return r;
}

/* ---- reading and writing -------------------------------------------- */

/* A stream being checked: what came, and where it first went wrong. */
struct rx {
	unsigned seed;
	uint64_t got;
	int64_t bad;		/* offset of the first wrong byte, -1 */
	int end;		/* 0 open, 1 EOF, -errno */
};

static void rx_init(struct rx *rx, unsigned seed)
{
	memset(rx, 0, sizeof(*rx));
	rx->seed = seed;
	rx->bad = -1;
}

/* Read what FD has now into RX.  Returns bytes read. */
static size_t rx_read(int fd, struct rx *rx)
{
	static uint8_t buf[256 * 1024];
	size_t total = 0;

	while (!rx->end) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0) {
			rx->end = 1;
			break;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				rx->end = -errno;
			break;
		}
		for (ssize_t k = 0; k < n && rx->bad < 0; k++)
			if (buf[k] != pat(rx->seed, rx->got + (uint64_t)k))
				rx->bad = (int64_t)(rx->got + (uint64_t)k);
		rx->got += (uint64_t)n;
		total += (size_t)n;
	}
	return total;
}

/* Read FD until it ends (EOF or error), running the loop meanwhile. */
static void rx_to_end(int fd, struct rx *rx)
{
	int64_t end = now_ms() + WAIT_MS;

	while (!rx->end && now_ms() < end) {
		rx_read(fd, rx);
		if (!rx->end)
			turn();
	}
}

/* A stream being sent. */
struct tx {
	unsigned seed;
	uint64_t sent, total;
};

/* Write what FD takes now of TX, in uneven pieces.  Returns bytes sent. */
static size_t tx_write(int fd, struct tx *tx)
{
	static uint8_t buf[100 * 1000];
	size_t total = 0;

	while (tx->sent < tx->total) {
		size_t want = 1 + (size_t)((tx->sent * 7919) % sizeof(buf));
		ssize_t n;

		if (want > tx->total - tx->sent)
			want = (size_t)(tx->total - tx->sent);
		fill(tx->seed, tx->sent, buf, want);
		n = write(fd, buf, want);
		if (n <= 0)
			break;
		tx->sent += (uint64_t)n;
		total += (size_t)n;
	}
	return total;
}

static const char *end_name(int end)
{
	static char buf[64];

	if (end == 1)
		return "EOF";
	if (end == 0)
		return "still open";
	snprintf(buf, sizeof(buf), "error %s", strerror(-end));
	return buf;
}

/* Bytes the kernel holds for reading on FD. */
static int inq(int fd)
{
	int n = 0;

	ioctl(fd, FIONREAD, &n);
	return n;
}

/* ---- cases ---------------------------------------------------------- */

/* A few MiB each way at once, every byte checked; then the client ends
 * first (its FIN passed on after the flush, the other way still flowing),
 * and the counters are exact. */
static void t_bytes_and_halfclose(bool client_first)
{
	const char *who = client_first ? "client" : "upstream";
	const uint64_t n_in = 5 * MiB + 123, n_out = 3 * MiB + 457;
	const uint64_t TAIL = 300 * 1024;
	struct tx to_up = { 11, 0, n_in }, to_cl = { 12, 0, n_out };
	struct rx at_up, at_cl;
	struct upstream up;
	struct origin o;
	int c, u;
	int64_t end;

	upstream_unix(&up, "bytes");
	origin_init(&o, &up.addr, 60000, 60000);
	rx_init(&at_up, 11);
	rx_init(&at_cl, 12);
	start(&o, &up, &c, &u, false, false);
	if (!ok(u >= 0, "%s first: upstream connection arrives", who))
		return;

	/* both ways at once */
	end = now_ms() + WAIT_MS;
	to_up.total = n_in;
	to_cl.total = n_out;
	while (now_ms() < end && (at_up.got < to_up.total ||
				  at_cl.got < to_cl.total)) {
		tx_write(c, &to_up);
		tx_write(u, &to_cl);
		turn();
		rx_read(u, &at_up);
		rx_read(c, &at_cl);
	}
	if (!ok(at_up.got == to_up.total && at_up.bad < 0 &&
	        at_cl.got == to_cl.total && at_cl.bad < 0,
	        "%s first: %llu + %llu bytes relayed both ways at once, byte-exact",
	        who, (unsigned long long)to_up.total,
	        (unsigned long long)to_cl.total))
		note("to upstream %llu/%llu (bad at %lld), to client %llu/%llu "
		     "(bad at %lld)", (unsigned long long)at_up.got,
		     (unsigned long long)to_up.total, (long long)at_up.bad,
		     (unsigned long long)at_cl.got,
		     (unsigned long long)to_cl.total, (long long)at_cl.bad);

	/* the first side sends its last TAIL bytes and ends while the other
	 * side does not read: TAIL is more than the kernel holds between the
	 * relay and the reader, less than that plus what the relay holds, so
	 * the EOF comes while bytes wait in the relay, and the FIN must wait
	 * behind them */
	{
		int first = client_first ? c : u, other = client_first ? u : c;
		struct tx *ftx = client_first ? &to_up : &to_cl;
		struct tx *otx = client_first ? &to_cl : &to_up;
		struct rx *orx = client_first ? &at_up : &at_cl;
		struct rx *frx = client_first ? &at_cl : &at_up;

		ftx->total += TAIL;
		end = now_ms() + WAIT_MS;
		while (ftx->sent < ftx->total && now_ms() < end) {
			tx_write(first, ftx);
			turn();
		}
		shutdown(first, SHUT_WR);
		for (int k = 0; k < 50; k++)
			turn();
		diag("%s first: %llu of %llu bytes sent before EOF, %d bytes "
		     "wait for the reader in its socket", who,
		     (unsigned long long)ftx->sent,
		     (unsigned long long)ftx->total, inq(other));
		rx_to_end(other, orx);
		if (!ok(orx->end == 1 && orx->got == ftx->total && orx->bad < 0,
			"%s first: its EOF reaches the other side after all "
			"%llu bytes", who, (unsigned long long)ftx->total))
			note("got %llu bytes, bad at %lld, then %s",
			     (unsigned long long)orx->got, (long long)orx->bad,
			     end_name(orx->end));
		is_int(o.calls, 0, "%s first: the relay lives on, half-closed",
		       who);

		/* the other direction still flows, then ends too */
		otx->total += MiB;
		end = now_ms() + WAIT_MS;
		while ((otx->sent < otx->total || frx->got < otx->total) &&
		       now_ms() < end) {
			tx_write(other, otx);
			turn();
			rx_read(first, frx);
		}
		shutdown(other, SHUT_WR);
		rx_to_end(first, frx);
		if (!ok(frx->end == 1 && frx->got == otx->total && frx->bad < 0,
			"%s first: the other direction flows on to its own "
			"EOF (%llu bytes)", who, (unsigned long long)otx->total))
			note("got %llu bytes, bad at %lld, then %s",
			     (unsigned long long)frx->got, (long long)frx->bad,
			     end_name(frx->end));
	}
	turn_until(&o.calls);
	if (!ok(o.calls == 1 && o.why == RELAY_CLOSE_DONE,
		"%s first: closed() once, reason done", who))
		note("calls %u, reason %s", o.calls, relay_close_name(o.why));
	is_int((long long)o.o.cnt->bytes_in, (long long)to_up.total,
	       "%s first: bytes_in counts every byte client -> upstream", who);
	is_int((long long)o.o.cnt->bytes_out, (long long)to_cl.total,
	       "%s first: bytes_out counts every byte upstream -> client", who);
	ok(o.o.cnt->accepted == 1 && o.o.cnt->active == 0 &&
	   o.o.cnt->closed[RELAY_CLOSE_DONE] == 1,
	   "%s first: accepted 1, active 0, closed[done] 1", who);
	close(c);
	close(u);
	upstream_free(&up);
}

/* One side stops reading: the relay stops reading the other side, so that
 * what it holds stays below RELAY_HIGH_WATER plus one read; when the
 * reader comes back every byte arrives. */
static void t_backpressure(bool to_client)
{
	const char *dir = to_client ? "upstream -> client" :
				      "client -> upstream";
	const uint64_t offer = 64 * MiB;
	/* the high-water mark, plus what the last reads brought: libevent's
	 * own (4 KiB) and a readv() into reserved space, which may be more
	 * than one chunk when a partly filled buffer chain is reused */
	const uint64_t bound = RELAY_HIGH_WATER + 2 * RELAY_READ_CHUNK + 4096;
	struct tx tx = { 21, 0, offer };
	struct rx rx;
	struct upstream up;
	struct origin o;
	int c, u, src, dst, still = 0;
	uint64_t relay_read, held;
	int64_t end;

	upstream_unix(&up, "bp");
	origin_init(&o, &up.addr, 60000, 60000);
	rx_init(&rx, 21);
	start(&o, &up, &c, &u, false, false);
	if (!ok(u >= 0, "%s: upstream connection arrives", dir))
		return;
	src = to_client ? u : c;
	dst = to_client ? c : u;

	/* the source writes while it can; settled once nothing has moved
	 * for 100 turns */
	end = now_ms() + WAIT_MS;
	while (tx.sent < tx.total && still < 100 && now_ms() < end) {
		still = tx_write(src, &tx) ? 0 : still + 1;
		turn();
	}
	relay_read = to_client ? o.o.cnt->bytes_out : o.o.cnt->bytes_in;
	held = relay_read - (uint64_t)inq(dst);
	diag("%s: source wrote %llu bytes, relay read %llu, %d in the "
	     "destination's socket, %llu held by the relay", dir,
	     (unsigned long long)tx.sent, (unsigned long long)relay_read,
	     inq(dst), (unsigned long long)held);
	ok(tx.sent < offer, "%s: the source is blocked (wrote %llu of %llu)",
	   dir, (unsigned long long)tx.sent, (unsigned long long)offer);
	ok(held <= bound && held >= RELAY_HIGH_WATER / 2,
	   "%s: the relay holds %llu bytes (at most %llu)", dir,
	   (unsigned long long)held, (unsigned long long)bound);

	/* the reader comes back: everything arrives, then EOF */
	end = now_ms() + WAIT_MS;
	tx.total = tx.sent + MiB;
	while ((tx.sent < tx.total || rx.got < tx.total) && now_ms() < end) {
		tx_write(src, &tx);
		turn();
		rx_read(dst, &rx);
	}
	shutdown(src, SHUT_WR);
	rx_to_end(dst, &rx);
	if (!ok(rx.end == 1 && rx.got == tx.total && rx.bad < 0,
	        "%s: reading resumes; all %llu bytes arrive, byte-exact, then EOF",
	        dir, (unsigned long long)tx.total))
		note("got %llu, bad at %lld, then %s",
		     (unsigned long long)rx.got, (long long)rx.bad,
		     end_name(rx.end));
	close(c);
	close(u);
	turn_until(&o.calls);
	is_int(o.calls, 1, "%s: closed() once", dir);
	upstream_free(&up);
}

/* A reset on one side is passed on as a reset to the other. */
static void t_reset(bool client)
{
	const char *who = client ? "client" : "upstream";
	struct upstream up;
	struct origin o;
	struct rx rx;
	char b[4];
	int c, u, other;

	upstream_tcp(&up);
	origin_init(&o, &up.addr, 60000, 60000);
	start(&o, &up, &c, &u, true, false);
	if (!ok(u >= 0, "%s reset: upstream connection arrives", who))
		return;
	/* established both ways: a byte each way */
	(void)!write(c, "x", 1);
	(void)!write(u, "y", 1);
	rx_init(&rx, 0);
	for (int64_t end = now_ms() + WAIT_MS;
	     (inq(u) < 1 || inq(c) < 1) && now_ms() < end;)
		turn();
	(void)!read(c, b, 1);
	(void)!read(u, b, 1);

	other = client ? u : c;
	reset_close(client ? c : u);
	rx_to_end(other, &rx);
	ok(rx.end == -ECONNRESET, "%s reset: the other side gets ECONNRESET "
	   "(got %s)", who, end_name(rx.end));
	turn_until(&o.calls);
	if (!ok(o.calls == 1 && o.why == (client ? RELAY_CLOSE_CLIENT_RESET :
					      RELAY_CLOSE_UPSTREAM_RESET) &&
	        o.o.cnt->closed[o.why] == 1,
	        "%s reset: closed() once, reason %s-reset, counted", who, who))
		note("calls %u, reason %s", o.calls, relay_close_name(o.why));
	close(other);
	upstream_free(&up);
}

/* The upstream sends more than the client reads (tiny buffers between the
 * relay and the client): bytes wait in the relay for the client. */
static void fill_for_client(struct origin *o, int u, struct tx *tx)
{
	int64_t end = now_ms() + WAIT_MS;
	int still = 0;

	while (still < 100 && now_ms() < end) {
		still = tx_write(u, tx) ? 0 : still + 1;
		turn();
	}
	diag("upstream wrote %llu bytes, the relay read %llu",
	     (unsigned long long)tx->sent,
	     (unsigned long long)o->o.cnt->bytes_out);
}

/* The idle timeout, with bytes buffered for a client that stopped reading
 * and with nothing pending: either way it cuts streams that never ended,
 * so both sides see a reset, never a FIN that would pass for a complete
 * stream. */
static void t_idle(void)
{
	struct upstream up;
	struct origin o, o2;
	struct tx tx = { 31, 0, 16 * MiB };
	struct rx rx, rxu;
	int64_t t0;
	int c, u;

	upstream_tcp(&up);
	origin_init(&o, &up.addr, 300, 300);
	start(&o, &up, &c, &u, true, true);
	if (!ok(u >= 0, "idle, pending: upstream connection arrives"))
		return;
	t0 = now_ms();
	fill_for_client(&o, u, &tx);
	turn_until(&o.calls);
	if (!ok(o.calls == 1 && o.why == RELAY_CLOSE_IDLE_TIMEOUT,
	        "idle, pending: closed() once by the idle timeout (after %lld ms)",
	        (long long)(now_ms() - t0)))
		note("calls %u, reason %s", o.calls, relay_close_name(o.why));
	rx_init(&rx, 31);
	rx_to_end(c, &rx);
	ok(rx.end == -ECONNRESET && rx.bad < 0 && rx.got < tx.sent,
	   "idle, pending: the client gets a reset, not EOF (%s after %llu "
	   "bytes)", end_name(rx.end), (unsigned long long)rx.got);
	close(c);
	close(u);

	/* nothing pending: still a reset both ways, after every byte */
	origin_init(&o2, &up.addr, 300, 300);
	start(&o2, &up, &c, &u, true, false);
	if (!ok(u >= 0, "idle, nothing pending: upstream connection arrives"))
		return;
	tx = (struct tx){ 32, 0, 1000 };
	tx_write(c, &tx);
	rx_init(&rx, 32);
	for (int64_t end = now_ms() + WAIT_MS;
	     rx.got < 1000 && !rx.end && now_ms() < end;) {
		turn();
		rx_read(u, &rx);
	}
	tx = (struct tx){ 33, 0, 1000 };
	tx_write(u, &tx);
	rxu = rx;		/* the upstream reads on, to its end */
	rx_init(&rx, 33);
	rx_to_end(c, &rx);
	rx_to_end(u, &rxu);
	ok(rx.end == -ECONNRESET && rx.got == 1000 && rx.bad < 0,
	   "idle, nothing pending: the client gets its bytes, then a reset "
	   "(%s after %llu bytes)", end_name(rx.end),
	   (unsigned long long)rx.got);
	ok(rxu.end == -ECONNRESET && rxu.got == 1000 && rxu.bad < 0,
	   "idle, nothing pending: the upstream gets its bytes, then a reset "
	   "(%s after %llu bytes)", end_name(rxu.end),
	   (unsigned long long)rxu.got);
	turn_until(&o2.calls);
	ok(o2.calls == 1 && o2.why == RELAY_CLOSE_IDLE_TIMEOUT &&
	   o2.o.cnt->closed[RELAY_CLOSE_IDLE_TIMEOUT] == 1,
	   "idle, nothing pending: closed() once, reason idle-timeout");
	close(c);
	close(u);
	upstream_free(&up);
}

/* The upstream cannot be reached: the client is reset. */
static void t_connect_failed(void)
{
	struct upstream up;
	struct origin o;
	struct sockaddr_in sin;
	struct rx rx;
	int c, fd, r;

	/* a unix socket that does not exist: fails inside relay_start() */
	upstream_unix(&up, "missing");
	upstream_free(&up);
	origin_init(&o, &up.addr, 60000, 60000);
	fd = client_pair(&c, true, false);
	r = relay_start(set, &o.o, fd, NULL);
	is_int(r, -ENOENT, "missing unix socket: relay_start() returns -ENOENT");
	rx_init(&rx, 0);
	rx_to_end(c, &rx);
	ok(rx.end == -ECONNRESET, "missing unix socket: the client is reset "
	   "(got %s)", end_name(rx.end));
	ok(o.o.cnt->closed[RELAY_CLOSE_CONNECT_FAILED] == 1 &&
	   o.o.cnt->accepted == 0 && o.o.cnt->active == 0,
	   "missing unix socket: closed[connect-failed] 1, none started");
	is_int(o.calls, 0, "missing unix socket: no closed() for a connection "
	       "that never started");
	close(c);

	/* a TCP port nobody listens on: fails later, reported by libevent */
	close(tcp_listen(&sin));	/* a port that was just free */
	upstream_tcp(&up);
	close(up.lfd);
	memcpy(&up.addr.sa, &sin, sizeof(sin));
	origin_init(&o, &up.addr, 60000, 60000);
	fd = client_pair(&c, true, false);
	r = relay_start(set, &o.o, fd, NULL);
	turn_until(&o.calls);
	rx_init(&rx, 0);
	rx_to_end(c, &rx);
	if (!ok(r == 0 && o.calls == 1 && o.why == RELAY_CLOSE_CONNECT_FAILED &&
	        o.o.cnt->closed[RELAY_CLOSE_CONNECT_FAILED] == 1,
	        "refused TCP upstream: closed() once, reason connect-failed"))
		note("relay_start %d, calls %u, reason %s", r, o.calls,
		     relay_close_name(o.why));
	ok(rx.end == -ECONNRESET, "refused TCP upstream: the client is reset "
	   "(got %s)", end_name(rx.end));
	close(c);
}

/* relay_close_all (shutdown): a client with bytes waiting for it is reset,
 * and so is an idle one, whose stream never ended either; a connection
 * whose upstream had ended its stream, all of it delivered, gives its
 * client a FIN. */
static void t_close_all(void)
{
	struct upstream up;
	struct origin o;
	struct tx tx = { 41, 0, 16 * MiB }, tx3 = { 42, 0, 1000 };
	struct rx rx1, rx2, rx3;
	int c1, u1, c2, u2, c3, u3;

	upstream_tcp(&up);
	origin_init(&o, &up.addr, 60000, 60000);
	start(&o, &up, &c1, &u1, true, true);
	start(&o, &up, &c2, &u2, true, false);
	start(&o, &up, &c3, &u3, true, false);
	if (!ok(u1 >= 0 && u2 >= 0 && u3 >= 0,
		"close_all: three connections up"))
		return;
	fill_for_client(&o, u1, &tx);
	/* the third one's upstream sends its whole stream and ends it; the
	 * client does not read it before the shutdown */
	tx_write(u3, &tx3);
	shutdown(u3, SHUT_WR);
	for (int64_t end = now_ms() + WAIT_MS;
	     o.o.cnt->bytes_out < tx.sent + 1000 && now_ms() < end;)
		turn();
	for (int i = 0; i < 10; i++)
		turn();		/* the FIN passed on */
	is_int((long long)relay_count(set), 3, "close_all: 3 live connections");
	relay_close_all(set);
	is_int((long long)relay_count(set), 0, "close_all: none left");
	if (!ok(o.calls == 3 && o.o.cnt->closed[RELAY_CLOSE_SHUTDOWN] == 3 &&
	        o.o.cnt->active == 0,
	        "close_all: closed() once per connection, reason shutdown"))
		note("calls %u, closed[shutdown] %llu", o.calls,
		     (unsigned long long)o.o.cnt->closed[RELAY_CLOSE_SHUTDOWN]);
	rx_init(&rx1, 41);
	rx_to_end(c1, &rx1);
	ok(rx1.end == -ECONNRESET && rx1.bad < 0,
	   "close_all: the client with bytes pending is reset (%s after %llu "
	   "bytes)", end_name(rx1.end), (unsigned long long)rx1.got);
	rx_init(&rx2, 0);
	rx_to_end(c2, &rx2);
	ok(rx2.end == -ECONNRESET && rx2.got == 0,
	   "close_all: the idle client is reset too (%s)", end_name(rx2.end));
	rx_init(&rx3, 42);
	rx_to_end(c3, &rx3);
	ok(rx3.end == 1 && rx3.got == 1000 && rx3.bad < 0,
	   "close_all: a client whose stream was whole gets it, then EOF (%s "
	   "after %llu bytes)", end_name(rx3.end), (unsigned long long)rx3.got);
	close(c1);
	close(u1);
	close(c2);
	close(u2);
	close(c3);
	close(u3);
	upstream_free(&up);
}

/* Bulk between two TCP sockets goes by splice through pipes whose
 * capacity fits the budget: 1 MiB, 256 KiB, or none (copied), every byte
 * relayed either way. */
static void t_pipes(size_t budget, size_t want, const char *what)
{
	struct relay_set *saved = set;
	const uint64_t n = 8 * MiB;
	struct tx tx = { 31, 0, n };
	struct relay_stats st;
	struct upstream up;
	struct origin o;
	struct rx rx;
	int c, u;
	int64_t end;

	set = relay_set_new(base, shortage_cb, NULL);
	if (!set) {
		printf("Bail out! relay_set_new failed\n");
		exit(1);
	}
	if (budget != (size_t)-1)
		relay_set_pipe_budget(set, budget);
	upstream_tcp(&up);
	origin_init(&o, &up.addr, 60000, 60000);
	rx_init(&rx, 31);
	start(&o, &up, &c, &u, true, false);
	if (ok(u >= 0, "pipes, %s: upstream connection arrives", what)) {
		end = now_ms() + WAIT_MS;
		while (now_ms() < end && rx.got < n) {
			tx_write(c, &tx);
			turn();
			rx_read(u, &rx);
		}
		if (!ok(rx.got == n && rx.bad < 0,
			"pipes, %s: %llu bytes relayed, byte-exact", what,
			(unsigned long long)n))
			note("got %llu, bad at %lld", (unsigned long long)rx.got,
			     (long long)rx.bad);
		relay_get_stats(set, &st);
		if (want) {
			if (!ok(st.spliced > 0 && st.pipes > 0 &&
				st.pipe_bytes == st.pipes * want,
				"pipes, %s: spliced, through pipes of %zu KiB",
				what, want / 1024))
				note("spliced %llu, %u pipes, %zu bytes",
				     (unsigned long long)st.spliced, st.pipes,
				     st.pipe_bytes);
		} else if (!ok(st.spliced == 0 && st.pipes == 0 &&
			       st.pipe_misses > 0 && st.copied >= n,
			       "pipes, %s: no pipe fits: copied", what)) {
			note("spliced %llu, %u pipes, %llu misses",
			     (unsigned long long)st.spliced, st.pipes,
			     (unsigned long long)st.pipe_misses);
		}
		ok(st.pipe_bytes <= st.pipe_budget,
		   "pipes, %s: within the budget (%zu <= %zu)", what,
		   st.pipe_bytes, st.pipe_budget);
		close(u);
	}
	close(c);
	for (int k = 0; k < 20 && relay_count(set); k++)
		turn();
	relay_close_all(set);
	relay_set_free(set);
	set = saved;
	upstream_free(&up);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init(getenv("RELAY_TEST_VERBOSE") != NULL, false);
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	base = event_base_new();
	set = base ? relay_set_new(base, shortage_cb, NULL) : NULL;
	if (!set) {
		printf("Bail out! event_base_new/relay_set_new failed\n");
		return 1;
	}

	t_bytes_and_halfclose(true);
	t_bytes_and_halfclose(false);
	t_backpressure(true);
	t_backpressure(false);
	t_reset(true);
	t_reset(false);
	t_idle();
	t_connect_failed();
	t_close_all();
	if (!getenv("NSRELAY_COPY_ONLY")) {
		t_pipes((size_t)-1, 1024 * 1024, "default budget");
		t_pipes(300 * 1024, 256 * 1024, "a budget of 300 KiB");
	}
	t_pipes(32 * 1024, 0, "a budget of 32 KiB");
	is_int(shortages, 0, "no descriptor shortage reported");
	is_int((long long)relay_count(set), 0, "no connection left");

	relay_set_free(set);
	event_base_free(base);
	rmdir(tmpdir);
	return done_testing();
}
