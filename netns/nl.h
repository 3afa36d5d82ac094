/* SPDX-License-Identifier: MIT */
/* nl: a small asynchronous rtnetlink client (libmnl) inside a libevent loop.
 *
 * One struct nl is one non-blocking NETLINK_ROUTE socket, created in the
 * caller's network namespace or in a given one.  Requests are built by the
 * caller with libmnl (mnl_nlmsg_put_header() and friends) and handed to
 * nl_request(), which copies them, stamps a sequence number and NLM_F_ACK,
 * and sends them in order.  Replies are matched by sequence number and port
 * id; each request ends with exactly one call of its done callback.
 *
 * Never logs, never exits: errors are -errno plus the kernel's extended ack
 * message when it sent one.
 */
#ifndef NSRELAY_NL_H
#define NSRELAY_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

struct event_base;
struct nlmsghdr;
struct nl;

#define NL_DEFAULT_TIMEOUT_MS	5000	/* per request, from when it is sent */
#define NL_DUMP_RETRIES		3	/* re-sends after NLM_F_DUMP_INTR */

/* Completion of a request: err is 0 or -errno (-ETIMEDOUT, -ECANCELED when
 * the socket is freed, -ENOBUFS when it overran, or the kernel's error).
 * extack is the kernel's message or NULL; it is valid during the call only. */
typedef void (*nl_done_fn)(int err, const char *extack, void *arg);

/* One reply message of a request (a GET's answer, or one part of a dump),
 * with a valid header; attributes are not validated yet: that is the
 * callback's job.  Return 0 to go on, or -errno: the request then ends with
 * that error once the kernel has finished answering it.  nlh == NULL means
 * "a dump was interrupted and is being repeated: forget what you collected". */
typedef int (*nl_msg_fn)(const struct nlmsghdr *nlh, void *arg);

/* Open a socket in the calling thread's namespace (netns_fd < 0) or in the
 * namespace of netns_fd (switch there for socket(), then back; a failure to
 * come back aborts the process).  Returns NULL and sets *err (-errno). */
struct nl *nl_open(struct event_base *base, int netns_fd, int *err);

/* The same around FD, an rtnetlink socket made elsewhere, or one end of
 * a socketpair behind which one is (the privileged helper's gate), whose
 * port id is PORTID.  FD is the new struct's (closed on failure).  NULL
 * and *err on failure. */
struct nl *nl_open_fd(struct event_base *base, int fd, uint32_t portid,
		      int *err);

/* Close the socket.  Every request not yet completed ends with -ECANCELED
 * (its callback runs here).  Accepts NULL; safe from inside a callback of
 * the same socket (the memory is released when that callback returns). */
void nl_free(struct nl *nl);

/* Per-request timeout in milliseconds (0 = NL_DEFAULT_TIMEOUT_MS).  A request
 * whose answer does not come in time ends with -ETIMEDOUT; a late answer is
 * dropped.  Only that request fails, unless it was a dump: then the socket is
 * unusable (a dump still runs in the kernel) and behaves as in nl_error(). */
void nl_set_timeout(struct nl *nl, unsigned ms);

/* 0 while the socket is usable; -errno once it has failed for good (overrun
 * with ENOBUFS, a stalled dump, a receive error): all its requests were
 * completed with that error and new ones are refused.  Reopen to go on. */
int nl_error(const struct nl *nl);

/* Send the request in req (req->nlmsg_len bytes; copied).  nl sets the
 * sequence number, the port id and NLM_F_REQUEST | NLM_F_ACK; NLM_F_DUMP in
 * nlmsg_flags makes it a dump (ended by NLMSG_DONE; only one dump runs per
 * socket, later requests wait behind it, in order).  msg_cb may be NULL.
 * Requests on one socket reach the kernel in the order of these calls; the
 * kernel does the work inside sendmsg(), so a socket sends only a few per
 * loop turn and holds the rest for the next turns.
 * Returns 0 (done_cb will run exactly once, never before nl_request returns)
 * or -errno (done_cb will not run). */
int nl_request(struct nl *nl, const struct nlmsghdr *req, nl_msg_fn msg_cb,
	       nl_done_fn done_cb, void *arg);

/* Requests accepted by nl_request() and not yet completed. */
unsigned nl_pending(const struct nl *nl);

/* Attribute validation driven by a table.  One rule per attribute the
 * caller reads: its type, its libmnl data type and, when non-zero, its
 * exact payload length (else the data type's own rule applies).  Attributes
 * without a rule, and types above max (newer than our headers), are skipped
 * and left NULL in tb. */
struct nl_attr_rule {
	uint16_t type;
	enum mnl_attr_data_type data_type;
	uint16_t len;
};

struct nl_policy {
	uint16_t max;			/* tb holds max + 1 entries */
	size_t n;
	const struct nl_attr_rule *rule;
};

#define NL_POLICY(max_, rules_) \
	{ (max_), sizeof(rules_) / sizeof((rules_)[0]), (rules_) }

/* Parse the attributes of nlh after hdrlen bytes of extra header (or those
 * nested in nest) into tb[0..pol->max], zeroed first.  Returns 0, or -EPROTO
 * when the message is shorter than its header or an attribute with a rule
 * breaks it. */
int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen,
		  const struct nl_policy *pol, const struct nlattr **tb);
int nl_attr_parse_nested(const struct nlattr *nest,
			 const struct nl_policy *pol, const struct nlattr **tb);

#endif
