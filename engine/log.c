/* SPDX-License-Identifier: MIT */
/* log: stderr, the journal or syslog, with levels.
 *
 * When stderr is connected to journald (JOURNAL_STREAM names the device
 * and inode of our stderr, as systemd sets it), lines go to the journal
 * natively with PRIORITY= and, for lines about a namespace, structured
 * fields: every such line starts "ns NAME: " and, when it is about one
 * service, "ns NAME: SERVICE: ", which become NSRELAY_NAMESPACE= and
 * NSRELAY_SERVICE= (journalctl NSRELAY_NAMESPACE=alice).  Otherwise plain
 * lines on stderr, or syslog once daemonised.
 *
 * Every line is written in the display form (log.h): a namespace name with
 * a newline or bytes that are not UTF-8 can neither forge a line nor break
 * a reader of the journal. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "engine/log.h"

static bool verbose;
static bool use_syslog;
static bool journal;	/* stderr is the journal */

/* Is stderr the stream JOURNAL_STREAM ("DEV:INO") names? */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

/* Length of the valid UTF-8 sequence at S (of at most N bytes), 0 if
 * none: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0xa0) ||		/* C1 controls */
	    (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

size_t log_escape_step(const char *str, size_t n, char out[4], size_t *took)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t len = s[0] < 0x20 || s[0] == 0x7f || s[0] == '\\' ? 0 :
		     utf8_len(s, n);

	if (len) {
		memcpy(out, s, len);
		*took = len;
		return len;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[s[0] >> 4];
	out[3] = hex[s[0] & 15];
	*took = 1;
	return 4;
}

size_t log_escape(const char *s, char *out, size_t len)
{
	size_t n = strlen(s), i = 0, o = 0, took, k;
	char piece[4];

	while (i < n) {
		k = log_escape_step(s + i, n - i, piece, &took);
		if (o + k >= len)
			break;
		memcpy(out + o, piece, k);
		o += k;
		i += took;
	}
	out[o] = '\0';
	return o;
}

/* The namespace and service a line is about: "ns NAME: [SERVICE: ]". */
static void fields(const char *msg, char *ns, size_t nslen, char *svc,
		   size_t svclen)
{
	const char *p, *q;

	ns[0] = svc[0] = '\0';
	if (strncmp(msg, "ns ", 3))
		return;
	p = msg + 3;
	q = strstr(p, ": ");
	if (!q || (size_t)(q - p) >= nslen || memchr(p, ' ', (size_t)(q - p)))
		return;
	snprintf(ns, nslen, "%.*s", (int)(q - p), p);
	p = q + 2;
	q = strstr(p, ": ");
	if (q && (size_t)(q - p) < svclen && !memchr(p, ' ', (size_t)(q - p)))
		snprintf(svc, svclen, "%.*s", (int)(q - p), p);
}

void log_init(bool v, bool to_syslog)
{
	verbose = v;
	use_syslog = to_syslog;
	journal = !to_syslog && stderr_is_journal();
	if (use_syslog)
		openlog("nsrelayd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

bool log_verbose(void)
{
	return verbose;
}

static void vlog(int pri, const char *fmt, va_list ap, int err)
{
	static const char *const name[] = {
		[LOG_ERR] = "error", [LOG_WARNING] = "warning",
		[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};
	char raw[1024], buf[4 * sizeof(raw)];
	int n;

	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (err && n >= 0 && (size_t)n < sizeof(raw))
		snprintf(raw + n, sizeof(raw) - n, ": %s", strerror(err));
	log_escape(raw, buf, sizeof(buf));
	if (use_syslog) {
		syslog(pri, "%s", buf);
	} else if (journal) {
		char ns[256], svc[256];

		fields(buf, ns, sizeof(ns), svc, sizeof(svc));
		if (sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%d", pri,
				    "SYSLOG_IDENTIFIER=nsrelayd",
				    ns[0] ? "NSRELAY_NAMESPACE=%s" : NULL, ns,
				    svc[0] ? "NSRELAY_SERVICE=%s" : NULL, svc,
				    NULL) < 0)
			fprintf(stderr, "<%d>%s\n", pri, buf);
	}
	else
		fprintf(stderr, "nsrelayd: %s: %s\n", name[pri], buf);
}

/* Each logger keeps errno as it found it. */
#define LOGGER(fn, pri, with_errno)				\
	void fn(const char *fmt, ...)				\
	{							\
		int saved = errno;				\
		va_list ap;					\
		if (pri == LOG_DEBUG && !verbose)		\
			return;					\
		va_start(ap, fmt);				\
		vlog(pri, fmt, ap, with_errno ? saved : 0);	\
		va_end(ap);					\
		errno = saved;					\
	}
LOGGER(log_warn, LOG_WARNING, 1)
LOGGER(log_warnx, LOG_WARNING, 0)
LOGGER(log_info, LOG_INFO, 0)
LOGGER(log_debug, LOG_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap, err);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap, 0);
	va_end(ap);
	exit(1);
}
