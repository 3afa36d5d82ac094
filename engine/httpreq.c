/* SPDX-License-Identifier: MIT */
/* httpreq: judge the head of an HTTP/1.x request (RFC 9112) for /metrics.
 *
 * Theory of operation
 *
 * The head is lines, each ended by LF with an optional CR before it (a
 * recipient may take a bare LF as the end of a line; a CR anywhere else is
 * refused): empty lines before the request line are skipped, then
 * "METHOD SP TARGET SP HTTP/D.D", field lines "NAME: VALUE", and an empty
 * line.  Every byte is checked, since it comes from anyone who can reach
 * the port; nothing is copied.
 *
 * The answer never depends on bytes that have not come yet, so the caller
 * may ask again after each read and act on the first answer that is not 0:
 *  - the request line is checked as it arrives: a byte that cannot belong
 *    where it is (a TLS hello, a NUL, a second space) is a 400 at once;
 *  - a complete request line is judged in this order: its syntax (400),
 *    the version (505), the method (405), the target (400 for one in no
 *    form we take, 404 for another path); any of these is the answer
 *    without waiting for the fields;
 *  - for a request for the page, each field line is checked as it comes
 *    (400), and Host is counted once the empty line is there;
 *  - only the first HTTPREQ_HEAD_MAX bytes are read: a head that does not
 *    end within them is a 431.
 * The body, if any, is not looked at: the endpoint answers and closes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "engine/httpreq.h"

/* token characters (RFC 9110 5.6.2) */
static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* visible ASCII: what a request target may hold */
static bool vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* what a field value may hold: VCHAR, obs-text, SP, HTAB */
static bool value_char(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static bool digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* A Host value, its white space trimmed: uri-host [":" port], loosely (an
 * IPv6 literal in brackets; empty is allowed). */
static bool host_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      digit(c) || (c && strchr("-._~%!$&'()*+,;=:[]", c))))
			return false;
	}
	return true;
}

/* The target T of N bytes: 0 for /metrics (a query allowed), else 404 or
 * 400.  Origin form "/path?query", or absolute form
 * "http://authority/path?query" (which a server must take). */
static int target(const char *t, size_t n)
{
	static const char path[] = "/metrics";
	size_t i = 0, plen;

	if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
		i = 7;
	else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
		i = 8;
	else if (t[0] != '/')
		return 400;
	if (i) {
		size_t a = i;

		while (i < n && t[i] != '/' && t[i] != '?')
			i++;
		if (i == a || !host_ok(t + a, i - a))
			return 400;
		if (i == n || t[i] == '?')
			return 404;	/* "/": the root */
	}
	for (plen = i; plen < n && t[plen] != '?'; plen++)
		;
	plen -= i;
	if (plen != sizeof(path) - 1 || memcmp(t + i, path, plen) != 0)
		return 404;
	return 0;
}

/* The request line S of N bytes, without its end (COMPLETE) or as much of
 * it as came (then a CR at its end may be followed by the LF).  0: a
 * request for the page (REQ filled), or, when not COMPLETE, nothing wrong
 * yet; else the status. */
static int request_line(const char *s, size_t n, bool complete,
			struct httpreq *req)
{
	static const char version[] = "HTTP/D.D";
	size_t i = 0, m, t0, t1, v0, k;
	int r;

	if (!complete && n && s[n - 1] == '\r')
		n--;
	while (i < n && tchar((unsigned char)s[i]))
		i++;
	m = i;
	if (i == n)
		return complete ? 400 : 0;
	if (s[i] != ' ' || m == 0)
		return 400;
	t0 = ++i;
	while (i < n && vchar((unsigned char)s[i]))
		i++;
	t1 = i;
	if (i == n)
		return complete ? 400 : 0;
	if (s[i] != ' ' || t1 == t0)
		return 400;
	v0 = ++i;
	for (k = 0; k < sizeof(version) - 1 && i < n; k++, i++)
		if (version[k] == 'D' ? !digit((unsigned char)s[i]) :
		    s[i] != version[k])
			return 400;
	if (i < n)
		return 400;	/* more after the version */
	if (k < sizeof(version) - 1)
		return complete ? 400 : 0;
	if (!complete)
		return 0;
	if (s[v0 + 5] != '1')
		return 505;
	if (m == 3 && memcmp(s, "GET", 3) == 0)
		req->head = false;
	else if (m == 4 && memcmp(s, "HEAD", 4) == 0)
		req->head = true;
	else
		return 405;
	r = target(s + t0, t1 - t0);
	if (r)
		return r;
	req->minor = (unsigned)(s[v0 + 7] - '0');
	return 0;
}

/* A field line S of N bytes, without its end (COMPLETE) or as much of it
 * as came: 0, or 400.  *HOSTS counts the Host fields of complete lines; a
 * bad Host value is a 400. */
static int field_line(const char *s, size_t n, bool complete,
		      unsigned *hosts)
{
	size_t i = 0, v, e;

	if (!complete && n && s[n - 1] == '\r')
		n--;
	while (i < n && tchar((unsigned char)s[i]))
		i++;
	if (i == n && !complete)
		return 0;
	/* no name, white space before the colon, or obs-fold */
	if (i == 0 || i == n || s[i] != ':')
		return 400;
	for (v = i + 1; v < n; v++)
		if (!value_char((unsigned char)s[v]))
			return 400;
	if (complete && i == 4 && strncasecmp(s, "host", 4) == 0) {
		(*hosts)++;
		for (v = i + 1; v < n && (s[v] == ' ' || s[v] == '\t'); v++)
			;
		for (e = n; e > v && (s[e - 1] == ' ' || s[e - 1] == '\t');
		     e--)
			;
		if (!host_ok(s + v, e - v))
			return 400;
	}
	return 0;
}

int httpreq_parse(const char *buf, size_t len, struct httpreq *req)
{
	size_t n = len < HTTPREQ_HEAD_MAX ? len : HTTPREQ_HEAD_MAX;
	size_t i = 0, end = 0, e;
	unsigned hosts = 0;
	bool first = true;
	const char *lf;
	int r;

	memset(req, 0, sizeof(*req));
	if (!n)
		return 0;
	for (;;) {
		lf = memchr(buf + i, '\n', n - i);
		if (!lf) {
			/* an incomplete line: judged as far as it came */
			if (i < n) {
				r = first ? request_line(buf + i, n - i, false,
							 req) :
					    field_line(buf + i, n - i, false,
						       &hosts);
				if (r)
					return r;
			}
			return n < HTTPREQ_HEAD_MAX ? 0 : 431;
		}
		end = (size_t)(lf - buf) + 1;
		e = end - 1;
		if (e > i && buf[e - 1] == '\r')
			e--;
		if (first) {
			if (e == i) {
				i = end;	/* an empty line before it */
				continue;
			}
			r = request_line(buf + i, e - i, true, req);
			if (r)
				return r;
			first = false;
		} else if (e == i) {
			break;		/* the empty line: the end */
		} else if (field_line(buf + i, e - i, true, &hosts)) {
			return 400;
		}
		i = end;
	}
	if (req->minor >= 1 ? hosts != 1 : hosts > 1)
		return 400;
	req->len = end;
	return 200;
}

const char *httpreq_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}
