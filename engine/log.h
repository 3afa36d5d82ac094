/* SPDX-License-Identifier: MIT */
/* log: one small, printf-checked logging vocabulary for the engine. */
#ifndef NSRELAY_LOG_H
#define NSRELAY_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Where lines go: stderr (with "<N>" priority prefixes when stderr is the
 * journal, so journald keeps levels), or syslog once daemonised. */
void log_init(bool verbose, bool to_syslog);
bool log_verbose(void);

/* Text from outside (namespace names above all: a file name may hold any
 * byte but '/' and NUL) is shown in one display form wherever the daemon
 * writes it, log lines, JSON and Prometheus labels alike: a character of
 * printable UTF-8 as it is; the backslash, every control character (C0,
 * DEL, C1) and every byte that is not part of valid UTF-8 as \xHH.  The
 * form is valid UTF-8, one line, and tells every name apart (it can be
 * undone).  log_escape_step() gives the form of the character at S (N >= 1
 * bytes left) in OUT (1 to 4 bytes, returned) and how many bytes of S it
 * took in *TOOK. */
size_t log_escape_step(const char *s, size_t n, char out[4], size_t *took);

/* The display form of the string S into OUT (LEN > 0 bytes, always
 * NUL-terminated, never cut inside an escape or a character).  Returns
 * the length written. */
size_t log_escape(const char *s, char *out, size_t len);

#define LOG_FMT(a, b) __attribute__((format(printf, a, b)))
void log_warn(const char *fmt, ...) LOG_FMT(1, 2);	/* appends strerror(errno) */
void log_warnx(const char *fmt, ...) LOG_FMT(1, 2);
void log_info(const char *fmt, ...) LOG_FMT(1, 2);
void log_debug(const char *fmt, ...) LOG_FMT(1, 2);	/* only with -v */
void fatal(const char *fmt, ...) LOG_FMT(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_FMT(1, 2) __attribute__((noreturn));
#endif
