/* SPDX-License-Identifier: MIT */
/* log: stderr, the journal or syslog, with levels.
 *
 * When stderr is connected to journald (JOURNAL_STREAM names the device
 * and inode of our stderr, as systemd sets it), lines go to the journal
 * natively with PRIORITY= and, for lines about a namespace, structured
 * fields: every such line starts "ns NAME: " and, when it is about one
 * service, "ns NAME: SERVICE: ", which become NSRELAY_NAMESPACE= and
 * NSRELAY_SERVICE= (journalctl NSRELAY_NAMESPACE=alice).  Otherwise plain
 * lines on stderr, or syslog once daemonised. */
#include <errno.h>
#include <stdarg.h>
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
	char buf[1024];
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (err && n >= 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(err));
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
