/* SPDX-License-Identifier: MIT */
/* nl: asynchronous rtnetlink requests over libmnl on a libevent loop.
 *
 * Theory of operation
 *
 * A struct nl owns one NETLINK_ROUTE socket (SOCK_NONBLOCK) with a persistent
 * EV_READ event.  Only socket() has to run inside a foreign namespace: the
 * socket stays bound to the namespace it was created in, so nl_open() makes
 * it there with netns_run_in() (which enters, runs, and comes back or
 * aborts); the rest (options, bind, the event) happens back home.
 *
 * Requests go through two FIFO lists:
 *
 *   queue     accepted, not yet sent
 *   inflight  sent; each carries a unique sequence number from a counter and
 *             a timer started when it was sent
 *
 * A request leaves the queue when fewer than NL_WINDOW requests are in flight
 * and, for a dump, when no other dump is running: the kernel runs one dump per
 * socket (a second one gets EBUSY).  The window bounds what the kernel can
 * queue towards us, so our receive buffer cannot overrun with ENOBUFS and
 * silently lose answers.  Order is kept: nothing overtakes a waiting request,
 * so a caller may pipeline "bring the link up, add the address, add the route"
 * and rely on the kernel seeing them in that order (rtnetlink handles each
 * request synchronously inside sendmsg()).
 *
 * Every request carries NLM_F_ACK.  An answer is matched by port id (ours)
 * and sequence number; anything else (a late answer to a request that timed
 * out) is dropped.  A plain request ends with an NLMSG_ERROR (error 0 is the
 * ACK), after any reply messages (a GET's answer); a dump ends with
 * NLMSG_DONE, whose payload holds an error too.  With NETLINK_EXT_ACK the
 * kernel appends TLVs with a message, which is validated and handed to the
 * done callback; NETLINK_CAP_ACK keeps the echoed request out of the ACK.
 * NETLINK_GET_STRICT_CHK lets dumps be filtered by the kernel (addresses of
 * one interface, for instance).
 *
 * rtnetlink does the work of a request inside sendmsg(), under the RTNL lock:
 * deleting a veth costs ~20 ms of RCU grace periods there.  So a socket
 * sends at most NL_SEND_BUDGET requests per loop turn (refilled by its read
 * event and by a zero timeout); a burst of expensive requests then yields to
 * the rest of the loop between turns instead of blocking it for seconds.
 *
 * A dump marked NLM_F_DUMP_INTR (the table changed under it) is repeated, up
 * to NL_DUMP_RETRIES times, after telling the message callback to forget what
 * it collected (nlh == NULL).
 *
 * Failure is contained in the smallest unit: a timeout ends one request.  The
 * socket itself fails only when its state is unknown: a receive error such as
 * ENOBUFS (answers were lost) or a dump that never finished (the kernel would
 * refuse the next dump).  Then every request ends with that error and new
 * ones are refused; the owner reopens.
 *
 * Callbacks may call nl_request() and nl_free() on the same socket.  Every
 * entry point (event callbacks, nl_free) counts itself in `busy`; nl_free()
 * inside a callback completes the requests and marks the socket dead, and the
 * outermost entry point releases it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* setns, unshare (configure defines it too) */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "netns/netns.h"
#include "netns/nl.h"
#include "netns/nsops.h"

#define NL_WINDOW	32		/* requests in flight per socket */
#define NL_RCVBUF	(1 << 20)	/* bytes; the kernel doubles it */
#define NL_RECV_SIZE	32768		/* the kernel's largest dump skb */
#define NL_READ_BATCH	64		/* datagrams per read event */
#define NL_MAX_REQ	65536		/* bytes, sanity bound on a request */
#define NL_RETRY_MS	10		/* after EAGAIN from sendmsg */
#define NL_SEND_BUDGET	1		/* sends per socket per loop turn */

struct nl_req {
	TAILQ_ENTRY(nl_req) entry;	/* nl->queue or nl->inflight */
	struct nl *nl;
	struct event *timer;
	nl_msg_fn msg_cb;
	nl_done_fn done_cb;
	void *arg;
	uint32_t seq;
	int err;			/* first error from msg_cb */
	unsigned retries;		/* dump repeats so far */
	bool dump;
	bool intr;			/* NLM_F_DUMP_INTR seen */
	struct nlmsghdr msg[];		/* the request, msg->nlmsg_len bytes */
};

TAILQ_HEAD(nl_req_list, nl_req);

struct nl {
	struct event_base *base;
	int fd;				/* -1 until open */
	struct event *rev;
	struct event *retry;		/* send on: next turn, after EAGAIN */
	struct nl_req_list queue;
	struct nl_req_list inflight;
	unsigned n_queue;
	unsigned n_inflight;
	uint32_t portid;
	uint32_t seq;
	unsigned timeout_ms;
	unsigned budget;		/* sends left in this loop turn */
	int error;			/* 0, or -errno once failed for good */
	bool dumping;			/* a dump is in flight */
	unsigned busy;			/* entry points on the stack */
	bool dead;			/* nl_free() called */
};

/* What one answer message meant for its request. */
struct nl_ctx {
	struct nl *nl;
	struct nl_req *req;
	bool end;			/* ERROR or DONE: the request is over */
	int err;
	const char *extack;
};

static void nl_read_cb(evutil_socket_t fd, short what, void *arg);
static void nl_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void nl_retry_cb(evutil_socket_t fd, short what, void *arg);

static void nl_req_free(struct nl_req *r)
{
	if (r->timer)
		event_free(r->timer);
	free(r);
}

static void nl_destroy(struct nl *nl)
{
	if (nl->rev)
		event_free(nl->rev);
	if (nl->retry)
		event_free(nl->retry);
	if (nl->fd >= 0)
		close(nl->fd);
	free(nl);
}

/* Run r's done callback; r is already off both lists.  Frees r. */
static void nl_finish(struct nl_req *r, int err, const char *extack)
{
	nl_done_fn cb = r->done_cb;
	void *arg = r->arg;

	nl_req_free(r);
	cb(err, extack, arg);
}

static void nl_unlink_inflight(struct nl *nl, struct nl_req *r)
{
	TAILQ_REMOVE(&nl->inflight, r, entry);
	nl->n_inflight--;
	if (r->dump)
		nl->dumping = false;
	evtimer_del(r->timer);
}

/* Remove and return the oldest unfinished request, NULL if none. */
static struct nl_req *nl_pop_any(struct nl *nl)
{
	struct nl_req *r = TAILQ_FIRST(&nl->inflight);

	if (r) {
		nl_unlink_inflight(nl, r);
		return r;
	}
	r = TAILQ_FIRST(&nl->queue);
	if (r) {
		TAILQ_REMOVE(&nl->queue, r, entry);
		nl->n_queue--;
	}
	return r;
}

/* The socket's state is unknown: end everything with err, refuse more. */
static void nl_fail(struct nl *nl, int err)
{
	struct nl_req *r;

	if (!nl->error)
		nl->error = err;
	event_del(nl->rev);
	while ((r = nl_pop_any(nl)))
		nl_finish(r, err, NULL);
}

static int nl_send(struct nl *nl, struct nl_req *r)
{
	struct timeval tv;
	ssize_t n;

	if (++nl->seq == 0)
		nl->seq = 1;
	r->seq = nl->seq;
	r->msg->nlmsg_seq = r->seq;
	do
		n = send(nl->fd, r->msg, r->msg->nlmsg_len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != r->msg->nlmsg_len)
		return -EMSGSIZE;
	tv.tv_sec = nl->timeout_ms / 1000;
	tv.tv_usec = (nl->timeout_ms % 1000) * 1000;
	if (evtimer_add(r->timer, &tv) < 0)
		return -ENOMEM;
	return 0;
}

/* Send what the window and the one-dump rule allow, in order.  If `mine`
 * (just accepted by nl_request) fails to send, it is freed and its error
 * returned without a callback; any other failure completes its request. */
static int nl_flush(struct nl *nl, struct nl_req *mine)
{
	struct timeval tv = { 0, NL_RETRY_MS * 1000 }, next_turn = { 0, 0 };
	struct nl_req *r;
	int err, ret = 0;

	while (!nl->dead && !nl->error && (r = TAILQ_FIRST(&nl->queue))) {
		if (nl->n_inflight >= NL_WINDOW || (r->dump && nl->dumping))
			break;
		if (!nl->budget) {
			if (!evtimer_pending(nl->retry, NULL))
				evtimer_add(nl->retry, &next_turn);
			break;
		}
		nl->budget--;
		err = nl_send(nl, r);
		if (err == -EAGAIN || err == -EWOULDBLOCK) {
			evtimer_add(nl->retry, &tv);
			break;
		}
		TAILQ_REMOVE(&nl->queue, r, entry);
		nl->n_queue--;
		if (err < 0) {
			if (r == mine) {
				nl_req_free(r);
				ret = err;
			} else {
				nl_finish(r, err, NULL);
			}
			continue;
		}
		TAILQ_INSERT_TAIL(&nl->inflight, r, entry);
		nl->n_inflight++;
		if (r->dump)
			nl->dumping = true;
	}
	return ret;
}

/* The kernel's extended ack message, if it sent one: TLVs start `off` bytes
 * into the payload of nlh.  Each attribute is validated before use. */
static const char *nl_extack(const struct nlmsghdr *nlh, size_t off)
{
	const struct nlattr *attr;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	if (off > mnl_nlmsg_get_payload_len(nlh))
		return NULL;
	mnl_attr_for_each(attr, nlh, off) {
		if (mnl_attr_type_valid(attr, NLMSGERR_ATTR_MAX) < 0)
			continue;
		if (mnl_attr_get_type(attr) != NLMSGERR_ATTR_MSG)
			continue;
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
			return NULL;
		return mnl_attr_get_str(attr);
	}
	return NULL;
}

static int nl_cb_error(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *ctx = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e);

	ctx->end = true;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		ctx->err = -EPROTO;
		return MNL_CB_STOP;
	}
	ctx->err = e->error > 0 ? -e->error : e->error;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
	    e->msg.nlmsg_len >= sizeof(struct nlmsghdr))
		off += MNL_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
	ctx->extack = nl_extack(nlh, off);
	return MNL_CB_STOP;
}

static int nl_cb_done(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *ctx = data;
	int err = 0;

	ctx->end = true;
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
		memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
		ctx->extack = nl_extack(nlh, sizeof(int));
	}
	ctx->err = err > 0 ? -err : err;
	return MNL_CB_STOP;
}

static int nl_cb_data(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *ctx = data;
	struct nl_req *r = ctx->req;
	int err;

	if (r->err || r->intr || !r->msg_cb)
		return MNL_CB_OK;
	err = r->msg_cb(nlh, r->arg);
	if (ctx->nl->dead)		/* r is gone with it */
		return MNL_CB_STOP;
	if (err < 0)
		r->err = err;
	return MNL_CB_OK;
}

static struct nl_req *nl_find(struct nl *nl, uint32_t seq)
{
	struct nl_req *r;

	TAILQ_FOREACH(r, &nl->inflight, entry)
		if (r->seq == seq)
			return r;
	return NULL;
}

/* One answer message: hand it to its request, end the request if it is the
 * last one.  The caller checks nl->dead and nl->error afterwards. */
static void nl_dispatch(struct nl *nl, struct nlmsghdr *nlh)
{
	mnl_cb_t ctl_cb[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = nl_cb_error,
		[NLMSG_DONE] = nl_cb_done,
	};
	struct nl_ctx ctx = { .nl = nl };
	struct nl_req *r;
	int err, ret;

	if (nlh->nlmsg_pid != nl->portid || nlh->nlmsg_seq == 0)
		return;			/* not an answer to us */
	r = nl_find(nl, nlh->nlmsg_seq);
	if (!r)
		return;			/* late: its request timed out */
	ctx.req = r;
	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) {
		/* libmnl refuses such messages; the dump is repeated anyway */
		r->intr = true;
		nlh->nlmsg_flags &= ~NLM_F_DUMP_INTR;
	}
	ret = mnl_cb_run2(nlh, nlh->nlmsg_len, r->seq, nl->portid,
			  nl_cb_data, &ctx, ctl_cb, NLMSG_MIN_TYPE);
	if (nl->dead)
		return;
	if (ret == MNL_CB_ERROR && !ctx.end && !r->err)
		r->err = -EPROTO;
	if (!ctx.end)
		return;

	nl_unlink_inflight(nl, r);
	err = ctx.err ? ctx.err : r->err;
	if (r->dump && r->intr && !ctx.err) {
		if (r->retries < NL_DUMP_RETRIES) {
			r->retries++;
			r->intr = false;
			r->err = 0;
			if (r->msg_cb) {
				r->msg_cb(NULL, r->arg);
				if (nl->dead)
					return;
			}
			TAILQ_INSERT_HEAD(&nl->queue, r, entry);
			nl->n_queue++;
			return;
		}
		err = -EINTR;
	}
	nl_finish(r, err, ctx.extack);
}

static void nl_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nl *nl = arg;
	/* aligned for struct nlmsghdr */
	uint32_t buf[NL_RECV_SIZE / sizeof(uint32_t)];
	struct nlmsghdr *nlh;
	ssize_t n;
	int len, i;

	nl->busy++;
	nl->budget = NL_SEND_BUDGET;
	for (i = 0; i < NL_READ_BATCH && !nl->dead && !nl->error; i++) {
		n = recv(nl->fd, buf, sizeof(buf), 0);
		if (n == 0) {
			/* a socketpair's end (the helper's gate): it closed */
			nl_fail(nl, -ECONNRESET);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* ENOBUFS: answers were lost; ENOSPC: truncated */
			nl_fail(nl, -errno);
			break;
		}
		len = (int)n;
		nlh = (struct nlmsghdr *)buf;
		while (mnl_nlmsg_ok(nlh, len) && !nl->dead && !nl->error) {
			nl_dispatch(nl, nlh);
			nlh = mnl_nlmsg_next(nlh, &len);
		}
	}
	nl_flush(nl, NULL);
	if (--nl->busy == 0 && nl->dead)
		nl_destroy(nl);
}

static void nl_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nl_req *r = arg;
	struct nl *nl = r->nl;
	bool dump = r->dump;

	nl->busy++;
	nl_unlink_inflight(nl, r);
	nl_finish(r, -ETIMEDOUT, NULL);
	/* a dump that never ended still occupies the kernel's dump slot */
	if (dump && !nl->dead)
		nl_fail(nl, -ETIMEDOUT);
	nl_flush(nl, NULL);
	if (--nl->busy == 0 && nl->dead)
		nl_destroy(nl);
}

static void nl_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nl *nl = arg;

	nl->busy++;
	nl->budget = NL_SEND_BUDGET;
	nl_flush(nl, NULL);
	if (--nl->busy == 0 && nl->dead)
		nl_destroy(nl);
}

/* A struct nl around FD (ours from now on). */
static struct nl *nl_new(struct event_base *base, int fd, uint32_t portid,
			 int *err)
{
	struct nl *nl;
	int ret;

	nl = calloc(1, sizeof(*nl));
	if (!nl) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	nl->base = base;
	nl->fd = fd;
	nl->portid = portid;
	nl->timeout_ms = NL_DEFAULT_TIMEOUT_MS;
	nl->budget = NL_SEND_BUDGET;
	TAILQ_INIT(&nl->queue);
	TAILQ_INIT(&nl->inflight);
	nl->rev = event_new(base, fd, EV_READ | EV_PERSIST, nl_read_cb, nl);
	nl->retry = evtimer_new(base, nl_retry_cb, nl);
	if (!nl->rev || !nl->retry || event_add(nl->rev, NULL) < 0) {
		ret = -ENOMEM;
		nl_destroy(nl);
		*err = ret;
		return NULL;
	}
	return nl;
}

struct nl *nl_open(struct event_base *base, int netns_fd, int *err)
{
	uint32_t portid;
	int fd = nsops_nl_socket(netns_fd, &portid);

	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	return nl_new(base, fd, portid, err);
}

struct nl *nl_open_fd(struct event_base *base, int fd, uint32_t portid,
		      int *err)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	return nl_new(base, fd, portid, err);
}

void nl_free(struct nl *nl)
{
	struct nl_req *r;

	if (!nl || nl->dead)
		return;
	nl->dead = true;
	nl->busy++;
	while ((r = nl_pop_any(nl)))
		nl_finish(r, -ECANCELED, NULL);
	if (--nl->busy == 0)
		nl_destroy(nl);
}

void nl_set_timeout(struct nl *nl, unsigned ms)
{
	nl->timeout_ms = ms ? ms : NL_DEFAULT_TIMEOUT_MS;
}

int nl_error(const struct nl *nl)
{
	return nl->error;
}

unsigned nl_pending(const struct nl *nl)
{
	return nl->n_queue + nl->n_inflight;
}

/* rtnetlink message types come in NEW, DEL, GET, SET quadruples; only a GET
 * can be a dump (NLM_F_ROOT and NLM_F_MATCH mean REPLACE and EXCL on NEW). */
static bool nl_is_dump(const struct nlmsghdr *req)
{
	return req->nlmsg_type >= RTM_BASE &&
	       ((req->nlmsg_type - RTM_BASE) & 3) == 2 &&
	       (req->nlmsg_flags & NLM_F_DUMP);
}

int nl_request(struct nl *nl, const struct nlmsghdr *req, nl_msg_fn msg_cb,
	       nl_done_fn done_cb, void *arg)
{
	struct nl_req *r;
	bool head;

	if (nl->dead)
		return -ESHUTDOWN;
	if (nl->error)
		return nl->error;
	if (req->nlmsg_len < sizeof(*req) || req->nlmsg_len > NL_MAX_REQ)
		return -EINVAL;
	r = calloc(1, sizeof(*r) + req->nlmsg_len);
	if (!r)
		return -ENOMEM;
	r->timer = evtimer_new(nl->base, nl_timeout_cb, r);
	if (!r->timer) {
		free(r);
		return -ENOMEM;
	}
	r->nl = nl;
	r->msg_cb = msg_cb;
	r->done_cb = done_cb;
	r->arg = arg;
	memcpy(r->msg, req, req->nlmsg_len);
	r->msg->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	r->msg->nlmsg_pid = 0;
	r->dump = nl_is_dump(req);

	/* Send now only if nothing waits ahead: then the only request that
	 * can fail here is this one, and no callback runs from inside here. */
	head = TAILQ_EMPTY(&nl->queue);
	TAILQ_INSERT_TAIL(&nl->queue, r, entry);
	nl->n_queue++;
	if (!head)
		return 0;
	return nl_flush(nl, r);
}

/* ------------------------------------------------------------ attributes */

struct nl_attr_ctx {
	const struct nl_policy *pol;
	const struct nlattr **tb;
};

/* The one attribute callback: look the type up in the policy. */
static int nl_attr_cb(const struct nlattr *a, void *data)
{
	const struct nl_attr_ctx *c = data;
	uint16_t type = mnl_attr_get_type(a);
	const struct nl_attr_rule *r;
	size_t i;

	if (mnl_attr_type_valid(a, c->pol->max) < 0)
		return MNL_CB_OK;	/* newer than our headers: unused */
	for (i = 0; i < c->pol->n; i++) {
		r = &c->pol->rule[i];
		if (r->type != type)
			continue;
		if ((r->len ? mnl_attr_validate2(a, r->data_type, r->len)
			    : mnl_attr_validate(a, r->data_type)) < 0)
			return MNL_CB_ERROR;
		c->tb[type] = a;
		break;
	}
	return MNL_CB_OK;
}

int nl_attr_parse(const struct nlmsghdr *nlh, size_t hdrlen,
		  const struct nl_policy *pol, const struct nlattr **tb)
{
	struct nl_attr_ctx c = { pol, tb };

	memset(tb, 0, (pol->max + 1u) * sizeof(*tb));
	if (mnl_nlmsg_get_payload_len(nlh) < hdrlen)
		return -EPROTO;
	return mnl_attr_parse(nlh, (unsigned)hdrlen, nl_attr_cb, &c) < 0
		       ? -EPROTO : 0;
}

int nl_attr_parse_nested(const struct nlattr *nest,
			 const struct nl_policy *pol, const struct nlattr **tb)
{
	struct nl_attr_ctx c = { pol, tb };

	memset(tb, 0, (pol->max + 1u) * sizeof(*tb));
	return mnl_attr_parse_nested(nest, nl_attr_cb, &c) < 0 ? -EPROTO : 0;
}
