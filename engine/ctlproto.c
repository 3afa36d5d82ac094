/* SPDX-License-Identifier: MIT */
/* ctlproto: parse "VERB [ARGUMENT]" request lines of the control socket.
 *
 * Grammar: a line is words separated by spaces or tabs, optionally ended by
 * CR.  "provision USER", "deprovision USER", "status", "stats",
 * "stats NAMESPACE" and "reload".  Every byte is checked: the line comes
 * from another process, and a NUL or an odd byte in a name must not turn
 * into another name along the way.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engine/ctlproto.h"

/* ARGS: 1 required, 0 none, 2 optional */
static const struct {
	const char *name;
	enum ctlproto_verb verb;
	unsigned char args;
	bool mutates;
} verbs[] = {
	{ "provision", CTLPROTO_PROVISION, 1, true },
	{ "deprovision", CTLPROTO_DEPROVISION, 1, true },
	{ "status", CTLPROTO_STATUS, 0, false },
	{ "stats", CTLPROTO_STATS, 2, false },
	{ "reload", CTLPROTO_RELOAD, 0, true },
};

bool ctlproto_verb_mutates(enum ctlproto_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].mutates;
	return true;
}

const char *ctlproto_verb_name(enum ctlproto_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "?";
}

static int fail(char *why, size_t len, const char *msg)
{
	if (len)
		snprintf(why, len, "%s", msg);
	return -EINVAL;
}

static bool user_char(char c, bool first, bool last)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_')
		return true;
	if (c == '-' || c == '.')
		return !first;
	return c == '$' && last && !first;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

int ctlproto_parse(const char *line, size_t len, struct ctlproto_req *req,
		   char *why, size_t whylen)
{
	const char *w[3];
	size_t wl[3], nw = 0, i = 0;

	if (len > CTLPROTO_LINE_MAX)
		return fail(why, whylen, "line too long");
	if (len && memchr(line, '\0', len))
		return fail(why, whylen, "NUL byte in the line");
	if (len && line[len - 1] == '\r')
		len--;
	while (i < len) {
		size_t start;

		while (i < len && blank(line[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !blank(line[i]))
			i++;
		if (nw == 3)
			return fail(why, whylen, "too many arguments");
		w[nw] = line + start;
		wl[nw++] = i - start;
	}
	if (nw == 0)
		return fail(why, whylen, "empty command");
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == wl[0] &&
		    memcmp(verbs[i].name, w[0], wl[0]) == 0)
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0]))
		return fail(why, whylen, "unknown command (try: status, "
			    "stats [NAMESPACE], reload, provision USER, "
			    "deprovision USER)");
	req->verb = verbs[i].verb;
	req->user[0] = '\0';
	if (verbs[i].args == 0 && nw > 1)
		return fail(why, whylen, "too many arguments");
	if (verbs[i].args == 1 && nw != 2)
		return fail(why, whylen, nw < 2 ? "missing user name" :
			    "too many arguments");
	if (nw > 2)
		return fail(why, whylen, "too many arguments");
	if (nw == 1)
		return 0;
	if (wl[1] > CTLPROTO_USER_MAX)
		return fail(why, whylen, verbs[i].args == 1 ?
			    "user name too long" : "namespace name too long");
	for (i = 0; i < wl[1]; i++)
		if (!user_char(w[1][i], i == 0, i + 1 == wl[1]))
			return fail(why, whylen, req->verb == CTLPROTO_STATS ?
				    "bad namespace name: use letters, "
				    "digits, '_', '-', '.'" :
				    "bad user name: use letters, "
				    "digits, '_', '-', '.'");
	memcpy(req->user, w[1], wl[1]);
	req->user[wl[1]] = '\0';
	return 0;
}
