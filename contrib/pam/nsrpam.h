/* SPDX-License-Identifier: MIT */
/* nsrpam: the PAM module's logic, free of libpam (unit-tested alone).
 *
 * Every function returns 0 (or a non-negative value) on success and
 * -errno on failure, writing a short reason into WHY; none of them logs.
 */
#ifndef NSRELAY_NSRPAM_H
#define NSRELAY_NSRPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NSRPAM_DEFAULT_SOCKET	"/run/nsrelay/control.sock"
#define NSRPAM_DEFAULT_DIR	"/run/netns"
#define NSRPAM_DEFAULT_MIN_UID	1000
#define NSRPAM_DEFAULT_TIMEOUT	10000	/* ms */
#define NSRPAM_NAME_MAX		255	/* user and namespace names */
#define NSRPAM_LINE_MAX		1024	/* what is kept of the answer line */
#define NSRPAM_ANSWER_MAX	65536	/* the most read looking for its end */

struct nsrpam_opts {
	char socket[108];	/* sun_path */
	char dir[4096];
	uid_t min_uid;
	uid_t max_uid;
	int timeout_ms;
	bool fail_open;
	bool debug;
	uid_t socket_uid;	/* owner the daemon must have (0) */
};

/* Defaults, then each "key=value" of ARGV in order (later wins).  Unknown
 * options and bad values are errors: 0 or -EINVAL with WHY. */
int nsrpam_parse_args(struct nsrpam_opts *o, int argc, const char **argv,
		      char *why, size_t len);

/* Is NAME a user name safe to put on the control protocol's line (and in
 * logs): 1..NSRPAM_NAME_MAX bytes of [A-Za-z0-9._-] plus a trailing '$'
 * (machine accounts), not starting with '-'? */
bool nsrpam_valid_user(const char *name);

/* Is NAME a namespace file name: 1..NSRPAM_NAME_MAX printable non-space
 * bytes, no '/', not "." or ".."? */
bool nsrpam_valid_ns(const char *name);

/* Parse the daemon's answer to "provision USER": "ok USER NS [more...]"
 * (tokens after the third are ignored).  0 with NS filled; -EPROTO for an
 * answer that is not for USER or has a bad name; -EREMOTEIO for
 * "error: ..." (the reason, sanitized, in WHY). */
int nsrpam_parse_answer(const char *line, const char *user, char *ns,
			size_t nslen, char *why, size_t len);

/* The answer line as it arrives: LINE (SIZE bytes, the caller's) keeps
 * its first SIZE - 1 bytes, NUL-terminated; the rest is read and counted
 * but not kept (the module needs only the first three words, which fit). */
struct nsrpam_line {
	char *line;
	size_t size;
	size_t kept;		/* bytes in LINE */
	size_t total;		/* bytes of the line seen so far */
};

/* Start reading a line into LINE of SIZE (>= 1) bytes. */
void nsrpam_line_init(struct nsrpam_line *l, char *line, size_t size);

/* Feed N bytes just received.  1 when the newline came (LINE holds the
 * line's prefix without it; bytes after it are ignored), 0 to read more,
 * -EPROTO for a NUL byte in the line, -EMSGSIZE for a line of
 * NSRPAM_ANSWER_MAX bytes or more (however it was cut into pieces).
 * Pure: no I/O. */
int nsrpam_line_feed(struct nsrpam_line *l, const char *buf, size_t n);

/* Connect to the control socket O->socket, send "provision USER", read the
 * answer line, keeping its first LINELEN - 1 bytes in LINE, all within
 * O->timeout_ms.  The socket must be owned by O->socket_uid and give
 * others nothing (its group may read and write: the daemon authorises each
 * command by the client's credentials), and its listener must be
 * O->socket_uid's (SO_PEERCRED).  0 or -errno (-ETIMEDOUT, -EPERM). */
int nsrpam_ask(const struct nsrpam_opts *o, const char *user, char *line,
	       size_t linelen, char *why, size_t len);

/* Open O->dir/NS (no symlink followed in the name; the directory owned by
 * root and writable by nobody else) and check that it is a network
 * namespace (nsfs, NS_GET_NSTYPE).  A close-on-exec fd, or -errno. */
int nsrpam_open_ns(const struct nsrpam_opts *o, const char *ns, char *why,
		   size_t len);

/* Provision USER and move the calling thread into its network namespace:
 * ask, parse, open, check, setns().  The namespace's name is copied to NS.
 * Nothing stays open.  0 or -errno with WHY. */
int nsrpam_enter(const struct nsrpam_opts *o, const char *user, char *ns,
		 size_t nslen, char *why, size_t len);

#endif
