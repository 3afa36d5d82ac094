/* SPDX-License-Identifier: MIT */
/* log: one small, printf-checked logging vocabulary for the engine. */
#ifndef NSRELAY_LOG_H
#define NSRELAY_LOG_H

#include <stdbool.h>

/* Where lines go: stderr (with "<N>" priority prefixes when stderr is the
 * journal, so journald keeps levels), or syslog once daemonised. */
void log_init(bool verbose, bool to_syslog);
bool log_verbose(void);

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))
void log_warn(const char *fmt, ...) LOG_FMT(1, 2);	/* appends strerror(errno) */
void log_warnx(const char *fmt, ...) LOG_FMT(1, 2);
void log_info(const char *fmt, ...) LOG_FMT(1, 2);
void log_debug(const char *fmt, ...) LOG_FMT(1, 2);	/* only with -v */
void fatal(const char *fmt, ...) LOG_FMT(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_FMT(1, 2) __attribute__((noreturn));
#endif
