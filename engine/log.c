/* SPDX-License-Identifier: MIT */
/* log: stderr/journald or syslog output with levels. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>

#include "engine/log.h"

static bool verbose;
static bool use_syslog;
static bool journal;	/* stderr is the journal: prefix "<N>" */

void log_init(bool v, bool to_syslog)
{
	verbose = v;
	use_syslog = to_syslog;
	journal = getenv("JOURNAL_STREAM") != NULL;
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
	if (use_syslog)
		syslog(pri, "%s", buf);
	else if (journal)
		fprintf(stderr, "<%d>%s\n", pri, buf);
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
