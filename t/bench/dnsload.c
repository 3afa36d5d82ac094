/* SPDX-License-Identifier: MIT */
/* dnsload: the DNS client of dns-bench.sh.  A-record queries for
 * db.internal (random ids, RD set), each answer checked: the id of a query
 * outstanding on that socket, QR set, NOERROR, the question echoed, an A
 * record 10.0.0.1 first in the answer section.  alarm() bounds every mode.
 *
 *   dnsload probe ADDR PORT
 *       one query, up to 3 tries of 300 ms; exit 0 on a right answer
 *   dnsload steady ADDR PORT SECS SOCKS WINDOW
 *       SOCKS connected sockets (source ports) kept for the whole run,
 *       WINDOW queries outstanding across them, a new one as soon as one
 *       is answered, for SECS s
 *   dnsload newflow ADDR PORT SECS PAR
 *       what glibc's resolver does for each lookup, PAR at once: socket(),
 *       connect(), send, wait, receive, close(); so each query comes from
 *       a new source port, a new flow for a relay
 *
 * steady and newflow print one line:
 *   answered lost bad late errors queries/s p50_us p99_us
 * lost: no answer within TIMEOUT (1 s); bad: an answer that fails the
 * checks; late: an answer to a query already counted lost (or to no query
 * of ours); errors: send or receive errors (ECONNREFUSED, ...).
 * queries/s counts the answers received in the SECS s. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/socket.h>

#define BENCH_NAME "dnsload"
#include "bench.h"

#define TIMEOUT 1.0
#define QLEN 29			/* header 12, qname 13, qtype and qclass 4 */

static struct sockaddr_in server;
static uint64_t rng;
static long answered, answered_in, lost, bad, late, errs;
static double *lat;
static size_t nlat, caplat;

static unsigned rnd16(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng >> 24) & 0xffff;
}

static void query(uint8_t *q, unsigned id)
{
	static const uint8_t rest[] = {
		0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,	/* RD; QD 1 */
		2, 'd', 'b', 8, 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0,
		0, 1, 0, 1				/* A, IN */
	};
	q[0] = id >> 8;
	q[1] = id & 0xff;
	memcpy(q + 2, rest, sizeof(rest));
}

/* 0 if R (N bytes) is the right answer to the query with id ID */
static int check(const uint8_t *r, ssize_t n, unsigned id)
{
	uint8_t q[QLEN];
	ssize_t off = QLEN;

	query(q, id);
	if (n < QLEN + 16 || r[0] != q[0] || r[1] != q[1] || !(r[2] & 0x80) ||
	    (r[3] & 0x0f) != 0 || (r[6] << 8 | r[7]) < 1 ||
	    memcmp(r + 12, q + 12, QLEN - 12))
		return -1;
	if ((r[off] & 0xc0) == 0xc0)		/* a pointer (to the question) */
		off += 2;
	else {
		while (off < n && r[off])
			off += 1 + r[off];
		off++;
	}
	if (off + 14 > n)
		return -1;
	/* TYPE A, CLASS IN, TTL, RDLENGTH 4, 10.0.0.1 */
	if (r[off] != 0 || r[off + 1] != 1 || r[off + 2] != 0 ||
	    r[off + 3] != 1 || r[off + 8] != 0 || r[off + 9] != 4 ||
	    r[off + 10] != 10 || r[off + 11] != 0 || r[off + 12] != 0 ||
	    r[off + 13] != 1)
		return -1;
	return 0;
}

static void record(double t)
{
	if (nlat == caplat) {
		caplat = caplat ? 2 * caplat : 65536;
		if (!(lat = realloc(lat, caplat * sizeof(double))))
			fail("realloc");
	}
	lat[nlat++] = t;
}

static int dial_udp(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail("socket");
	if (connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0)
		fail("connect");
	return fd;
}

static int send_query(int fd, unsigned id)
{
	uint8_t q[QLEN];

	query(q, id);
	if (send(fd, q, QLEN, 0) != QLEN) {
		errs++;
		return -1;
	}
	return 0;
}

static void report(double secs)
{
	double p50 = 0, p99 = 0;

	if (nlat) {
		qsort(lat, nlat, sizeof(double), cmpd);
		p50 = lat[(nlat - 1) / 2] * 1e6;
		p99 = lat[(size_t)((nlat - 1) * 0.99)] * 1e6;
	}
	printf("%ld %ld %ld %ld %ld %.0f %.0f %.0f\n", answered, lost, bad,
	       late, errs, answered_in / secs, p50, p99);
}

/* ---- steady: SOCKS sockets, WINDOW outstanding ------------------------ */

struct slot { int sock; int active; unsigned id; double t; };

static void steady(double secs, int nsock, int window)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), *fds = calloc(nsock, sizeof(int));
	int16_t *map = malloc((size_t)nsock * 65536 * sizeof(int16_t));
	struct slot *sl = calloc(window, sizeof(*sl));
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	double t0, end, next_scan;
	int active = 0;
	uint8_t r[4096];

	if (!fds || !map || !sl || window > 32767)
		fail("steady: memory");
	memset(map, 0xff, (size_t)nsock * 65536 * sizeof(int16_t));
	for (int s = 0; s < nsock; s++) {
		fds[s] = dial_udp();
		ev.data.u32 = s;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[s], &ev);
	}
	/* (re)send slot K with a fresh id on its socket */
#define FIRE(k) do { \
		struct slot *x = &sl[k]; \
		int16_t *m = map + (size_t)x->sock * 65536; \
		do x->id = rnd16(); while (m[x->id] >= 0); \
		m[x->id] = (k); \
		x->t = now(); \
		if (!x->active) { x->active = 1; active++; } \
		send_query(fds[x->sock], x->id); \
	} while (0)
#define DONE(k) do { \
		struct slot *x = &sl[k]; \
		map[(size_t)x->sock * 65536 + x->id] = -1; \
		if (now() < end) FIRE(k); \
		else { x->active = 0; active--; } \
	} while (0)
	t0 = now();
	end = t0 + secs;
	next_scan = t0 + 0.1;
	for (int k = 0; k < window; k++) {
		sl[k].sock = k % nsock;
		FIRE(k);
	}
	while (active > 0) {
		int n = epoll_wait(ep, evs, 64, 20);
		for (int i = 0; i < n; i++) {
			int s = evs[i].data.u32;
			ssize_t len;
			while ((len = recv(fds[s], r, sizeof(r), 0)) >= 0 ||
			       errno != EAGAIN) {
				double t = now();
				int k;
				unsigned id;
				if (len < 0) {
					errs++;		/* ECONNREFUSED: ICMP */
					continue;
				}
				id = len >= 2 ? (unsigned)(r[0] << 8 | r[1]) : 0;
				k = len >= 2 ? map[(size_t)s * 65536 + id] : -1;
				if (k < 0) {
					late++;
					continue;
				}
				if (check(r, len, id) < 0)
					bad++;
				else {
					answered++;
					if (t < end)
						answered_in++;
					record(t - sl[k].t);
				}
				DONE(k);
			}
		}
		if (now() >= next_scan) {
			double t = now();
			next_scan = t + 0.1;
			for (int k = 0; k < window; k++)
				if (sl[k].active && t - sl[k].t > TIMEOUT) {
					lost++;
					DONE(k);
				}
		}
	}
	report(secs);
}

/* ---- newflow: a socket per query, PAR at once ------------------------- */

static void newflow(double secs, int par)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), active = 0;
	struct slot *sl = calloc(par, sizeof(*sl));
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	double t0 = now(), end = t0 + secs, next_scan = t0 + 0.1;
	uint8_t r[4096];

	if (!sl)
		fail("newflow: memory");
	/* a new socket for slot K, its query sent */
#define OPEN(k) do { \
		struct slot *x = &sl[k]; \
		x->sock = dial_udp(); \
		x->id = rnd16(); \
		x->t = now(); \
		ev.data.u32 = (k); \
		epoll_ctl(ep, EPOLL_CTL_ADD, x->sock, &ev); \
		if (!x->active) { x->active = 1; active++; } \
		send_query(x->sock, x->id); \
	} while (0)
#define CLOSE(k) do { \
		struct slot *x = &sl[k]; \
		close(x->sock); \
		if (now() < end) OPEN(k); \
		else { x->active = 0; active--; } \
	} while (0)
	for (int k = 0; k < par; k++)
		OPEN(k);
	while (active > 0) {
		int n = epoll_wait(ep, evs, 64, 20);
		for (int i = 0; i < n; i++) {
			int k = evs[i].data.u32;
			ssize_t len = recv(sl[k].sock, r, sizeof(r), 0);
			double t = now();
			if (len < 0) {
				if (errno == EAGAIN)
					continue;
				errs++;
				lost++;
			} else if (len < 2 ||
				   (unsigned)(r[0] << 8 | r[1]) != sl[k].id) {
				late++;		/* not ours: keep waiting */
				continue;
			} else if (check(r, len, sl[k].id) < 0) {
				bad++;
			} else {
				answered++;
				if (t < end)
					answered_in++;
				record(t - sl[k].t);
			}
			CLOSE(k);
		}
		if (now() >= next_scan) {
			double t = now();
			next_scan = t + 0.1;
			for (int k = 0; k < par; k++)
				if (sl[k].active && t - sl[k].t > TIMEOUT) {
					lost++;
					CLOSE(k);
				}
		}
	}
	report(secs);
}

static int probe(void)
{
	int fd = dial_udp();
	uint8_t r[4096];

	for (int i = 0; i < 3; i++) {
		unsigned id = rnd16();
		double end = now() + 0.3;
		if (send_query(fd, id) < 0)
			continue;
		while (now() < end) {
			struct timeval tv = { 0, 20000 };
			fd_set rd;
			FD_ZERO(&rd);
			FD_SET(fd, &rd);
			if (select(fd + 1, &rd, NULL, NULL, &tv) <= 0)
				continue;
			ssize_t len = recv(fd, r, sizeof(r), 0);
			if (len > 0 && check(r, len, id) == 0)
				return 0;
		}
	}
	return 1;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	if (argc < 4 || inet_pton(AF_INET, argv[2], &server.sin_addr) != 1)
		goto usage;
	server.sin_family = AF_INET;
	server.sin_port = htons(atoi(argv[3]));
	if (getrandom(&rng, sizeof(rng), 0) != sizeof(rng) || !rng)
		rng = (uint64_t)now() * 1000003 + getpid();
	if (!strcmp(m, "probe") && argc == 4) {
		alarm(10);
		return probe();
	}
	if (!strcmp(m, "steady") && argc == 7 && atoi(argv[5]) > 0 &&
	    atoi(argv[6]) > 0 && atof(argv[4]) > 0) {
		alarm((unsigned)atof(argv[4]) + 30);
		steady(atof(argv[4]), atoi(argv[5]), atoi(argv[6]));
		return 0;
	}
	if (!strcmp(m, "newflow") && argc == 6 && atoi(argv[5]) > 0 &&
	    atof(argv[4]) > 0) {
		alarm((unsigned)atof(argv[4]) + 30);
		newflow(atof(argv[4]), atoi(argv[5]));
		return 0;
	}
usage:
	fprintf(stderr, "usage: dnsload probe ADDR PORT | steady ADDR PORT "
		"SECS SOCKS WINDOW | newflow ADDR PORT SECS PAR\n");
	return 2;
}
