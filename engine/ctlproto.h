/* SPDX-License-Identifier: MIT */
/* ctlproto: the control socket's request lines, parsed.  Pure: no I/O, no
 * allocation, no logging (fuzzed in t/fuzz/). */
#ifndef NSRELAY_CTLPROTO_H
#define NSRELAY_CTLPROTO_H

#include <stdbool.h>
#include <stddef.h>

#define CTLPROTO_LINE_MAX	1024	/* bytes, without the newline */
#define CTLPROTO_USER_MAX	255

/* Append only: the order is not part of the protocol, but tests and the
 * fuzz target name these. */
enum ctlproto_verb {
	CTLPROTO_PROVISION,	/* provision USER */
	CTLPROTO_DEPROVISION,	/* deprovision USER */
	CTLPROTO_STATUS,	/* status */
	CTLPROTO_STATS,		/* stats [NAMESPACE] */
	CTLPROTO_RELOAD,	/* reload */
};

struct ctlproto_req {
	enum ctlproto_verb verb;
	/* the argument: USER, or NAMESPACE for stats; "" when the verb has
	 * none (status, reload, stats of every namespace) */
	char user[CTLPROTO_USER_MAX + 1];
};

/* Parse one request line of LEN bytes (no newline; a trailing CR is
 * allowed; LINE need not be NUL-terminated).  Returns 0 and fills REQ, or
 * -EINVAL with a reason for the client in WHY (a line with a NUL byte, too
 * long, an unknown verb, a missing or extra argument, a user or namespace
 * name that is not a plain name: [A-Za-z0-9_.-], not starting with '-' or
 * '.', a '$' allowed at the end). */
int ctlproto_parse(const char *line, size_t len, struct ctlproto_req *req,
		   char *why, size_t whylen);

const char *ctlproto_verb_name(enum ctlproto_verb verb);

/* Does VERB change the daemon's state (root only)? */
bool ctlproto_verb_mutates(enum ctlproto_verb verb);
#endif
