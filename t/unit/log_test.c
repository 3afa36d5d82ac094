/* SPDX-License-Identifier: MIT */
/* log_test: the display form of text from outside (log.h), byte by byte:
 * what stays, what becomes \xHH, and that the output is never cut inside
 * an escape. */
#include <stdio.h>
#include <string.h>

#include "engine/log.h"
#include "t/unit/tap.h"

static void form(const char *in, const char *want, const char *what)
{
	char out[256];

	log_escape(in, out, sizeof(out));
	is_str(out, want, "%s", what);
}

int main(void)
{
	char small[6];	/* 5 bytes and the NUL */
	size_t n;

	form("alice", "alice", "plain ASCII stays");
	form("a b-c_d.e", "a b-c_d.e", "spaces and punctuation stay");
	form("caf\xc3\xa9", "caf\xc3\xa9", "two-byte UTF-8 stays");
	form("\xe2\x82\xac", "\xe2\x82\xac", "three-byte UTF-8 stays");
	form("\xf0\x9f\x90\xa7", "\xf0\x9f\x90\xa7", "four-byte UTF-8 stays");
	form("adv\xff", "adv\\xff", "a byte that is not UTF-8 is escaped");
	form("a\nb", "a\\x0ab", "a newline is escaped");
	form("a\rb\tc\x1b[1m", "a\\x0db\\x09c\\x1b[1m", "CR, tab, ESC");
	form("a\x7f", "a\\x7f", "DEL");
	form("a\xc2\x85z", "a\\xc2\\x85z", "a C1 control (NEL) is escaped");
	form("\xc2\xa0", "\xc2\xa0", "U+00A0 is past C1 and stays");
	form("back\\slash", "back\\x5cslash", "the backslash is escaped");
	form("\xc0\xaf", "\\xc0\\xaf", "an overlong form is escaped");
	form("\xed\xa0\x80", "\\xed\\xa0\\x80", "a surrogate is escaped");
	form("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80",
	     "above U+10FFFF is escaped");
	form("\xe2\x82", "\\xe2\\x82", "a cut sequence is escaped");
	form("\xe2\x82" "a", "\\xe2\\x82a", "... and what follows it stays");
	n = log_escape("ab\xff", small, sizeof(small));
	is_str(small, "ab", "never cut inside an escape");
	is_int((long long)n, 2, "... and the length says what was written");
	n = log_escape("abcd\xc3\xa9", small, sizeof(small));
	is_str(small, "abcd", "never cut inside a character");
	return done_testing();
}
