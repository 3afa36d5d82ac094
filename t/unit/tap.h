/* SPDX-License-Identifier: MIT */
/* tap.h: a tiny header-only Test Anything Protocol helper for unit tests.
 *
 *	plan(n);			optional; else done_testing() prints it
 *	ok(cond, "name %d", i);		returns cond
 *	is_int(got, want, "name");	is_str(got, want, "name");
 *	diag("note");			"# note" on stdout
 *	return done_testing();		non-zero exit status if anything failed
 */
#ifndef NSRELAY_TAP_H
#define NSRELAY_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define TAP_PRINTF(f, a)	__attribute__((format(printf, f, a)))

struct tap_state {
	int planned;		/* -1: no plan yet */
	int run;
	int failed;
};

static inline struct tap_state *tap_state(void)
{
	static struct tap_state st = { -1, 0, 0 };

	return &st;
}

/* Announce that N tests will run. */
static inline void plan(int n)
{
	tap_state()->planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

TAP_PRINTF(1, 0)
static inline void tap_vline(const char *fmt, va_list ap)
{
	char buf[4096];
	char *p, *nl;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (p = buf; ; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		printf("# %s\n", p);
		if (!nl)
			break;
	}
}

/* A "# ..." comment line (multi-line text gets one "#" per line). */
TAP_PRINTF(1, 2)
static inline void diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vline(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

TAP_PRINTF(2, 0)
static inline bool tap_vok(bool cond, const char *fmt, va_list ap)
{
	struct tap_state *st = tap_state();
	char name[1024];

	vsnprintf(name, sizeof(name), fmt, ap);
	st->run++;
	if (!cond)
		st->failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", st->run, name);
	fflush(stdout);
	return cond;
}

/* One test: passes if COND. */
TAP_PRINTF(2, 3)
static inline bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cond = tap_vok(cond, fmt, ap);
	va_end(ap);
	return cond;
}

/* Passes if GOT == WANT; prints both otherwise. */
TAP_PRINTF(3, 4)
static inline bool is_int(long long got, long long want, const char *fmt,
			  ...)
{
	va_list ap;
	bool cond = got == want;

	va_start(ap, fmt);
	tap_vok(cond, fmt, ap);
	va_end(ap);
	if (!cond)
		diag("     got: %lld\n expected: %lld", got, want);
	return cond;
}

/* Passes if the strings are equal (both NULL counts as equal). */
TAP_PRINTF(3, 4)
static inline bool is_str(const char *got, const char *want,
			  const char *fmt, ...)
{
	va_list ap;
	bool cond = (!got && !want) || (got && want && !strcmp(got, want));

	va_start(ap, fmt);
	tap_vok(cond, fmt, ap);
	va_end(ap);
	if (!cond)
		diag("     got: %s%s%s\n expected: %s%s%s",
		     got ? "'" : "", got ? got : "NULL", got ? "'" : "",
		     want ? "'" : "", want ? want : "NULL", want ? "'" : "");
	return cond;
}

/* Print the plan if none was given; the exit status for main(). */
static inline int done_testing(void)
{
	struct tap_state *st = tap_state();

	if (st->planned < 0)
		printf("1..%d\n", st->run);
	else if (st->planned != st->run)
		diag("planned %d tests but ran %d", st->planned, st->run);
	if (st->failed)
		diag("failed %d of %d tests", st->failed, st->run);
	fflush(stdout);
	return st->failed || (st->planned >= 0 && st->planned != st->run);
}

#endif
