/* SPDX-License-Identifier: MIT */
/* values.c: pure parsers of the values a config file holds: durations
 * ("1h30m"), socket addresses ("[::1]:53", "unix:/run/x.sock"), namespace
 * and service names, whole numbers.  No YAML here: each returns a reason
 * that the schema turns into a message with a position.
 */
#include "config/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Parse a duration; NULL, or why not (written into WHY). */
const char *config_duration_why(const char *s, uint64_t *ms, bool zero_ok,
				char *why, size_t why_len)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 },
		{ "h", 60 * 60 * 1000 }, { "d", 24 * 60 * 60 * 1000 },
	};
	uint64_t total = 0;
	const char *p = s;
	bool big = false;

	if (!*p)
		return "must not be empty";
	if (zero_ok && !strcmp(p, "0")) {
		*ms = 0;
		return NULL;
	}
	while (*p) {
		uint64_t v = 0;
		const char *u;
		size_t i, ulen;

		if (*p < '0' || *p > '9')
			return "expected a number and a unit, e.g. 5s or 1h30m";
		for (; *p >= '0' && *p <= '9'; p++) {
			if (v > (UINT64_MAX - 9) / 10)
				big = true;
			else
				v = v * 10 + (uint64_t)(*p - '0');
		}
		if (*p == '.' || *p == ',')
			return "fractions are not supported: use a smaller "
			       "unit, e.g. 1500ms";
		for (u = p; *p && (*p < '0' || *p > '9'); p++)
			;
		ulen = (size_t)(p - u);
		if (!ulen)
			return "a unit is required (ms, s, m, h, d)";
		for (i = 0; i < ARRAY_SIZE(units); i++)
			if (strlen(units[i].name) == ulen &&
			    !strncmp(units[i].name, u, ulen))
				break;
		if (i == ARRAY_SIZE(units)) {
			snprintf(why, why_len, "unknown unit \"%.*s\"",
				 ulen > 64 ? 64 : (int)ulen, u);
			return why;
		}
		if (v > UINT64_MAX / units[i].ms ||
		    total > UINT64_MAX - v * units[i].ms)
			big = true;
		else
			total += v * units[i].ms;
	}
	if (big || total > CONFIG_MAX_DURATION_MS)
		return "longer than 30 days";
	if (!total && !zero_ok)
		return "must be greater than zero";
	*ms = total;
	return NULL;
}

const char *config_mode_why(const char *s, unsigned *mode)
{
	size_t n = strspn(s, "01234567");
	unsigned m = 0;
	size_t i;

	if (!n || s[n] || n < 3 || n > 4 || (n == 4 && s[0] != '0'))
		return "expected an octal mode such as \"0600\" or \"0660\"";
	for (i = 0; i < n; i++)
		m = m * 8 + (unsigned)(s[i] - '0');
	if (m & 0007)
		return "must not give others any access (for a group, set "
		       "control.group and 0660)";
	if ((m & 0600) != 0600)
		return "must give the owner read and write (0600)";
	if (m & 0111)
		return "must not have execute bits (a socket needs read and "
		       "write)";
	*mode = m;
	return NULL;
}

const char *config_group_problem(const char *name)
{
	const char *p;

	if (!*name)
		return "must not be empty";
	if (strlen(name) > 255)
		return "longer than 255 bytes";
	for (p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p == ',' ||
		    isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return "must not contain '/', ':', ',' or white space";
	return NULL;
}

/* Why NAME is not a usable namespace name, or NULL. */
const char *config_ns_name_problem(const char *name)
{
	if (!*name)
		return "must not be empty";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "must not be \".\" or \"..\"";
	if (strchr(name, '/'))
		return "must not contain '/'";
	if (strlen(name) > NS_NAME_MAX)
		return "longer than 255 bytes";
	return NULL;
}

bool config_valid_service_name(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			     "abcdefghijklmnopqrstuvwxyz0123456789_.-");

	return n && !s[n] && n <= SERVICE_NAME_MAX;
}
/* A template is refused when some name made from it would be unsafe.
 * "." and "..": %i and %U expand to digits, and %u to a user name, which is
 * never "." or ".." (refused when listed here, and by prov_spec_derive()
 * for the rest), so a template can expand to "." or ".." only when it has
 * no substitution and is "." or "..": ".%u" is safe, since no user is
 * called ".". */
const char *config_tmpl_problem(char which, const char *tmpl)
{
	bool iface = which != 'n', subst = false;
	size_t min = 0;		/* bytes of the shortest name it makes */
	char lit[4] = "";	/* the name, when it has no substitution */
	const char *p;

	for (p = tmpl; *p; p++) {
		char ch = *p;

		if (ch == '%' && !p[1])
			break;		/* prov_pool_set_tmpl() says why */
		if (ch == '%' && p[1] != '%') {
			subst = true;
			min++;
			p++;
			continue;
		}
		if (ch == '%' && p[1] == '%')
			p++;		/* a literal '%' */
		if (ch == '/')
			return iface ? "an interface name cannot contain '/'" :
			       "a namespace name cannot contain '/' (it is a "
			       "file in the namespace directory)";
		if (iface && (ch == ':' || ch == '%' ||
			      isspace((unsigned char)ch)))
			return "an interface name cannot contain ':', '%' or "
			       "white space";
		if (min < sizeof(lit) - 1)
			lit[min] = ch;
		min++;
	}
	if (!subst && min < sizeof(lit) && (!strcmp(lit, ".") ||
					    !strcmp(lit, "..")))
		return "a name cannot be \".\" or \"..\"";
	if (iface && min >= IFNAMSIZ)
		return "every name made from it is longer than 15 bytes, the "
		       "limit of an interface name";
	return NULL;
}

int config_parse_uint(const char *v, unsigned long limit, unsigned long *out)
{
	unsigned long n;
	char *end;

	errno = 0;
	if (!*v || !strchr("0123456789", v[0]))
		return -EINVAL;
	n = strtoul(v, &end, 10);
	if (errno || *end || n >= limit)
		return -EINVAL;
	*out = n;
	return 0;
}

bool config_valid_ns_name(const char *name)
{
	return name && !config_ns_name_problem(name);
}

int config_parse_duration(const char *s, uint64_t *ms)
{
	char why[128];
	uint64_t v;

	if (!s || config_duration_why(s, &v, false, why, sizeof(why)))
		return -EINVAL;
	*ms = v;
	return 0;
}

static int parse_unix(const char *s, struct config_sockaddr *out,
		      const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)(void *)&out->sa;
	const char *path = strncmp(s, "unix:", 5) ? s : s + 5;
	size_t n = strlen(path);

	if (path[0] != '/') {
		*why = "unix socket path must be absolute";
		return -EINVAL;
	}
	if (n >= sizeof(sun->sun_path)) {
		*why = "unix socket path too long";
		return -EINVAL;
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	snprintf(out->text, sizeof(out->text), "unix:%s", path);
	return 0;
}

/* Decimal port 1..65535 at P; 0 or -EINVAL (reason may live in out->text,
 * which is why *why is documented as valid while OUT is). */
static int parse_port(const char *p, unsigned *port,
		      struct config_sockaddr *out, const char **why)
{
	unsigned long v = 0;
	const char *q;

	if (!*p) {
		*why = "missing port";
		return -EINVAL;
	}
	for (q = p; *q; q++) {
		if (*q < '0' || *q > '9') {
			*why = "port must be a decimal number";
			return -EINVAL;
		}
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*q - '0');
	}
	if (v < 1 || v > 65535) {
		snprintf(out->text, sizeof(out->text),
			 "port %.32s%s out of range", p,
			 strlen(p) > 32 ? "..." : "");
		*why = out->text;
		return -EINVAL;
	}
	*port = (unsigned)v;
	return 0;
}

int config_parse_hostport(const char *s, struct config_sockaddr *out,
			  const char **why)
{
	const char *colon = strrchr(s, ':'), *p;
	size_t n, label = 0;
	bool alpha = false;
	unsigned port;

	memset(out, 0, sizeof(*out));
	if (!colon) {
		*why = "missing port";
		return -EINVAL;
	}
	n = (size_t)(colon - s);
	if (!n || n > CONFIG_HOST_MAX) {
		*why = !n ? "missing host name" : "host name longer than 120 "
		       "bytes";
		return -EINVAL;
	}
	for (p = s; p < colon; p++) {
		char ch = *p;

		if (ch == '.') {
			if (!label || p[-1] == '-') {
				*why = "not a host name (an empty label, or one "
				       "ending with '-')";
				return -EINVAL;
			}
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)ch) && ch != '-') {
			*why = "not an IP address or a host name (letters, "
			       "digits, '-' and dots)";
			return -EINVAL;
		}
		if ((ch == '-' && !label) || ++label > 63) {
			*why = "not a host name (a label starts with '-' or "
			       "is longer than 63 bytes)";
			return -EINVAL;
		}
		if (isalpha((unsigned char)ch) || ch == '-')
			alpha = true;
	}
	if (!label || p[-1] == '-' || !alpha) {
		*why = "not a host name";
		return -EINVAL;
	}
	if (parse_port(colon + 1, &port, out, why))
		return -EINVAL;
	out->sa.ss_family = AF_UNSPEC;
	out->len = 0;
	out->port = port;
	for (size_t i = 0; i < n; i++)
		out->text[i] = (char)tolower((unsigned char)s[i]);
	snprintf(out->text + n, sizeof(out->text) - n, ":%u", port);
	return 0;
}

int config_parse_sockaddr(const char *s, bool allow_unix,
			  struct config_sockaddr *out, const char **why)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&out->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&out->sa;
	char host[INET6_ADDRSTRLEN + 1], ip[INET6_ADDRSTRLEN];
	const char *port, *colon, *end;
	struct in6_addr a6;
	struct in_addr a4;
	unsigned portnum;
	size_t n;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (!s || !*s) {
		*why = "empty address";
		return -EINVAL;
	}
	if (!strncmp(s, "unix:", 5) || s[0] == '/') {
		if (allow_unix)
			return parse_unix(s, out, why);
		*why = "unix sockets are not allowed here";
		return -EINVAL;
	}
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end) {
			*why = "missing ']' after the IPv6 address";
			return -EINVAL;
		}
		n = (size_t)(end - s - 1);
		if (n >= sizeof(host))
			n = sizeof(host) - 1;	/* inet_pton will refuse */
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			*why = "not an IPv6 address";
			return -EINVAL;
		}
		if (end[1] && end[1] != ':') {
			*why = "expected ':' and a port after ']'";
			return -EINVAL;
		}
		port = end[1] ? end + 2 : end + 1;
		if (parse_port(port, &portnum, out, why))
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = a6;
		sin6->sin6_port = htons((uint16_t)portnum);
		out->len = sizeof(*sin6);
		inet_ntop(AF_INET6, &a6, ip, sizeof(ip));
		snprintf(out->text, sizeof(out->text), "[%s]:%u", ip, portnum);
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || colon != strchr(s, ':')) {
		/* none, or several: maybe an IPv6 address without brackets */
		n = colon ? (size_t)(colon - s) : 0;
		if (colon && n < sizeof(host)) {
			memcpy(host, s, n);
			host[n] = '\0';
		}
		if (inet_pton(AF_INET6, s, &a6) == 1 ||
		    (colon && n < sizeof(host) &&
		     inet_pton(AF_INET6, host, &a6) == 1))
			*why = "IPv6 addresses need brackets: [::1]:3306";
		else if (!colon)
			*why = "missing port";
		else
			*why = "not an IP address (host names are not "
			       "supported)";
		return -EINVAL;
	}
	n = (size_t)(colon - s);
	if (!n) {
		*why = "missing IP address";
		return -EINVAL;
	}
	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &a4) != 1) {
		*why = "not an IP address (host names are not supported)";
		return -EINVAL;
	}
	if (parse_port(colon + 1, &portnum, out, why))
		return -EINVAL;
	sin->sin_family = AF_INET;
	sin->sin_addr = a4;
	sin->sin_port = htons((uint16_t)portnum);
	out->len = sizeof(*sin);
	inet_ntop(AF_INET, &a4, ip, sizeof(ip));
	snprintf(out->text, sizeof(out->text), "%s:%u", ip, portnum);
	return 0;
}
