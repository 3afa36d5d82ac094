/* SPDX-License-Identifier: MIT */
/* httpreq_test: the metrics endpoint's judgement of request heads
 * (engine/httpreq.h): what is served, what gets which error, that an
 * answer comes as soon as the bytes allow and never changes with the bytes
 * that follow, and the bound on the head's size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/httpreq.h"
#include "t/unit/tap.h"

#define H11	"Host: 127.0.0.1:9543\r\n"

static int parse(const char *s, size_t n, struct httpreq *req)
{
	/* on the heap, exactly N bytes: ASan sees a read past the end */
	char *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, s, n);
	r = httpreq_parse(copy, n, req);
	free(copy);
	return r;
}

static void judged(const char *head, int want, const char *what)
{
	struct httpreq req;

	is_int(parse(head, strlen(head), &req), want, "%s", what);
}

/* Every prefix of HEAD: 0 until the answer is due at byte AT (0: at its
 * end), then WANT, for every longer prefix too. */
static void as_it_comes(const char *head, int want, size_t at,
			const char *what)
{
	size_t n = strlen(head), i, bad = 0;
	struct httpreq req;
	int r;

	if (!at)
		at = n;
	for (i = 0; i <= n; i++) {
		r = parse(head, i, &req);
		if (r != (i < at ? 0 : want)) {
			if (!bad++)
				diag("prefix of %zu bytes: %d", i, r);
		}
	}
	ok(!bad, "%s", what);
}

int main(void)
{
	struct httpreq req;
	char *big;
	size_t n;
	int r;

	/* served */
	r = parse("GET /metrics HTTP/1.1\r\n" H11 "\r\nxy", 49, &req);
	is_int(r, 200, "GET /metrics HTTP/1.1 with Host: 200");
	ok(!req.head && req.minor == 1 && req.len == 47,
	   "... a GET of HTTP/1.1, the head's 47 bytes");
	r = parse("HEAD /metrics HTTP/1.0\r\n\r\n", 26, &req);
	is_int(r, 200, "HEAD /metrics HTTP/1.0 without Host: 200");
	ok(req.head && req.minor == 0 && req.len == 26, "... a HEAD of HTTP/1.0");
	judged("GET /metrics?name[]=up&x=%20 HTTP/1.1\r\n" H11 "\r\n", 200,
	       "a query");
	judged("GET http://127.0.0.1:9543/metrics HTTP/1.1\r\n" H11 "\r\n", 200,
	       "the absolute form");
	judged("GET /metrics HTTP/1.1\n" "host:x\n" "\n", 200,
	       "bare LF line ends, a lower-case Host, no space");
	judged("\r\n\nGET /metrics HTTP/1.1\r\n" H11 "\r\n", 200,
	       "empty lines before the request line are skipped");
	judged("GET /metrics HTTP/1.9\r\n" H11 "\r\n", 200, "HTTP/1.9 is HTTP/1");
	judged("GET /metrics HTTP/1.1\r\nHost: [::1]:9543\r\n"
	       "User-Agent: Prometheus/2.45.0\r\nAccept: application/"
	       "openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,"
	       "*/*;q=0.1\r\nAccept-Encoding: gzip\r\n"
	       "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n", 200,
	       "what Prometheus sends");
	judged("GET /metrics HTTP/1.1\r\n" H11 "X-Empty:\r\nX-Utf8: caf\xc3\xa9\r\n"
	       "\r\nbody bytes are not looked at", 200,
	       "an empty value, obs-text, bytes after the head");

	/* another target, method or version */
	judged("GET / HTTP/1.1\r\n", 404, "GET /: 404, before the fields");
	judged("GET /metrics/ HTTP/1.1\r\n" H11 "\r\n", 404, "/metrics/: 404");
	judged("GET /metricsx HTTP/1.1\r\n" H11 "\r\n", 404, "/metricsx: 404");
	judged("GET /METRICS HTTP/1.1\r\n" H11 "\r\n", 404,
	       "a path is case-sensitive");
	judged("GET http://h/ HTTP/1.1\r\n", 404, "absolute form, another path");
	judged("GET http://h HTTP/1.1\r\n", 404, "absolute form, no path: the root");
	judged("POST /metrics HTTP/1.1\r\n", 405, "POST: 405");
	judged("get /metrics HTTP/1.1\r\n", 405, "a method is case-sensitive");
	judged("OPTIONS * HTTP/1.1\r\n", 405, "OPTIONS *: 405");
	judged("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "the HTTP/2 preface: 505");
	judged("GET /metrics HTTP/0.9\r\n", 505, "HTTP/0.9 in the HTTP/1 form: 505");
	judged("POST /x HTTP/2.0\r\n", 505, "the version is judged before the method");

	/* not a request */
	judged("GET /metrics\r\n", 400, "no version (HTTP/0.9): 400");
	judged("GET  /metrics HTTP/1.1\r\n", 400, "two spaces: 400");
	judged("GET /metrics HTTP/1.1 \r\n", 400, "a space after the version");
	judged("GET /metrics HTTP/1.10\r\n", 400, "HTTP/1.10");
	judged("GET /metrics http/1.1\r\n", 400, "http/1.1 in lower case");
	judged(" GET /metrics HTTP/1.1\r\n", 400, "a space before the method");
	judged("GET\t/metrics HTTP/1.1\r\n", 400, "a tab for a space");
	judged("GET /me\x7ftrics HTTP/1.1\r\n", 400, "DEL in the target");
	judged("GET /caf\xc3\xa9 HTTP/1.1\r\n", 400, "8-bit bytes in the target");
	judged("GET metrics HTTP/1.1\r\n", 400, "a target without a slash");
	judged("GET * HTTP/1.1\r\n", 400, "GET *");
	judged("GET http:///metrics HTTP/1.1\r\n", 400,
	       "absolute form without a host");
	judged("GET ftp://h/metrics HTTP/1.1\r\n", 400, "another scheme");
	judged("GET /metrics HTTP/1.1\r\r\n", 400, "two CRs");
	judged("GET /metrics HTTP/1.1\r\n" H11 "Bad Name: x\r\n\r\n", 400,
	       "a space in a field name");
	judged("GET /metrics HTTP/1.1\r\n" H11 "Name : x\r\n\r\n", 400,
	       "a space before the colon");
	judged("GET /metrics HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n", 400, "obs-fold");
	judged("GET /metrics HTTP/1.1\r\n" H11 "NoColon\r\n\r\n", 400, "no colon");
	judged("GET /metrics HTTP/1.1\r\n" H11 ": x\r\n\r\n", 400, "no name");
	judged("GET /metrics HTTP/1.1\r\n" H11 "X: a\rb\r\n\r\n", 400,
	       "a bare CR in a value");
	judged("GET /metrics HTTP/1.1\r\n" H11 "X: a\x01\r\n\r\n", 400,
	       "a control byte in a value");
	judged("GET /metrics HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host");
	judged("GET /metrics HTTP/1.1\r\n" H11 H11 "\r\n", 400, "two Hosts");
	judged("GET /metrics HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", 400,
	       "two Hosts in HTTP/1.0");
	judged("GET /metrics HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "a bad Host");
	judged("GET /metrics HTTP/1.1\r\nHost: a/b\r\n\r\n", 400,
	       "a Host with a slash");
	judged("GET /metrics HTTP/1.1\r\nHost:\r\n\r\n", 200,
	       "an empty Host is allowed");
	r = parse("GET /metrics HTTP/1.1\r\n\0", 24, &req);
	is_int(r, 400, "a NUL where a field begins");
	r = parse("G\0T", 3, &req);
	is_int(r, 400, "a NUL in the method, at once");

	/* as soon as the bytes allow, and never changed by what follows */
	as_it_comes("GET /metrics HTTP/1.1\r\n" H11 "\r\n", 200, 0,
		    "each prefix of a request: no answer before its end");
	as_it_comes("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, 1,
		    "a TLS hello: 400 at its first byte");
	as_it_comes("GET /metrics HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400,
		    strlen("GET /metrics HTTP/1.1\r\nHost: x\r\nBad "),
		    "a bad field line: 400 at its first bad byte");
	as_it_comes("GET /other HTTP/1.1\r\n" H11 "\r\n", 404,
		    strlen("GET /other HTTP/1.1\r\n"),
		    "another target: 404 once the request line ends");
	as_it_comes("GET /metrics HTTP/1.1x", 400, strlen("GET /metrics HTTP/1.1x"),
		    "a byte after the version: 400 at that byte");
	as_it_comes("\r\r", 400, 2, "a CR that is not before an LF");

	/* the bound: 8 KiB, the empty line included */
	big = malloc(HTTPREQ_HEAD_MAX + 64);
	n = (size_t)sprintf(big, "GET /metrics HTTP/1.1\r\n" H11 "X: ");
	memset(big + n, 'a', HTTPREQ_HEAD_MAX - n - 4);
	memcpy(big + HTTPREQ_HEAD_MAX - 4, "\r\n\r\n", 4);
	r = parse(big, HTTPREQ_HEAD_MAX, &req);
	is_int(r, 200, "a head of exactly 8192 bytes: 200");
	is_int((long long)req.len, HTTPREQ_HEAD_MAX, "... all of it the head");
	is_int(parse(big, HTTPREQ_HEAD_MAX - 1, &req), 0,
	       "... one byte short: read more");
	memcpy(big + HTTPREQ_HEAD_MAX - 4, "a\r\n\r\n", 5);
	is_int(parse(big, HTTPREQ_HEAD_MAX, &req), 431,
	       "8193 bytes: 431 at byte 8192");
	is_int(parse(big, HTTPREQ_HEAD_MAX + 1, &req), 431,
	       "... and with its end in view, still 431");
	memset(big, 'a', HTTPREQ_HEAD_MAX);
	memcpy(big, "GET /", 5);
	is_int(parse(big, HTTPREQ_HEAD_MAX, &req), 431,
	       "a request line of 8 KiB that has not ended: 431");
	memset(big, '\n', HTTPREQ_HEAD_MAX);
	is_int(parse(big, HTTPREQ_HEAD_MAX, &req), 431, "8 KiB of empty lines: 431");
	free(big);

	is_str(httpreq_reason(431), "Request Header Fields Too Large",
	       "reason of 431");
	is_str(httpreq_reason(299), "Error", "reason of a status it does not know");
	return done_testing();
}
