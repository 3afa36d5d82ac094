/* SPDX-License-Identifier: MIT */
/* privc: asking the privileged helper.
 *
 * Theory of operation
 *
 * At start, still root, the engine makes two SOCK_SEQPACKET socketpairs
 * and forks: the child becomes the helper (priv_helper_main(), never
 * returns), the parent goes on to drop every privilege.  One pair is the
 * loop's channel, used from the event loop's thread only; the other is
 * the workers' (namespace creation, file writes: calls that take
 * milliseconds), used from any worker thread under a mutex.  A call is one
 * request and its answer, blocking: the helper answers a listener or a
 * netlink socket in tens of microseconds, on a thread that does nothing
 * slow, so the loop never waits behind a namespace being created.
 *
 * The helper never speaks first.  So the loop channel is watched by an
 * event between calls: readable there means the helper's end closed (it
 * died), and the daemon exits non-zero at once rather than serve half.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "engine/log.h"
#include "engine/privc.h"
#include "netns/provision.h"
#include "priv/helper.h"

struct chan {
	int fd;
	pthread_mutex_t lock;
	/* LISTENs sent ahead (privc_listen_send()), answered in order:
	 * received before anything else is asked on the channel */
	struct privc_listen *ahead[PRIVC_BATCH_MAX];
	size_t nahead;
};

struct privc {
	struct chan loop, work;
	pid_t pid;
	struct event *ev;
	void (*gone)(void *arg);
	void *arg;
};

struct privc *privc_start(const struct config *cfg, int *err)
{
	struct privc *pc = calloc(1, sizeof(*pc));
	int a[2], b[2];
	pid_t pid;

	if (!pc) {
		*err = -ENOMEM;
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, a) < 0) {
		*err = -errno;
		free(pc);
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, b) < 0) {
		*err = -errno;
		close(a[0]);
		close(a[1]);
		free(pc);
		return NULL;
	}
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		*err = -errno;
		close(a[0]);
		close(a[1]);
		close(b[0]);
		close(b[1]);
		free(pc);
		return NULL;
	}
	if (pid == 0) {
		unsigned lo = (unsigned)(a[1] < b[1] ? a[1] : b[1]);
		unsigned hi = (unsigned)(a[1] < b[1] ? b[1] : a[1]);

		/* nothing of the engine's but the two channels and stdio:
		 * not the control socket, not /metrics, not its epoll */
		close(a[0]);
		close(b[0]);
		if (lo > 3)
			close_range(3, lo - 1, 0);
		if (hi > lo + 1)
			close_range(lo + 1, hi - 1, 0);
		close_range(hi + 1, ~0u, 0);
		priv_helper_main(a[1], b[1], cfg);
	}
	close(a[1]);
	close(b[1]);
	pc->pid = pid;
	pc->loop.fd = a[0];
	pc->work.fd = b[0];
	pthread_mutex_init(&pc->loop.lock, NULL);
	pthread_mutex_init(&pc->work.lock, NULL);
	return pc;
}

static void on_gone(evutil_socket_t fd, short what, void *arg)
{
	struct privc *pc = arg;

	(void)fd;
	(void)what;
	event_del(pc->ev);
	pc->gone(pc->arg);
}

int privc_watch(struct privc *pc, struct event_base *base,
		void (*gone)(void *arg), void *arg)
{
	pc->gone = gone;
	pc->arg = arg;
	pc->ev = event_new(base, pc->loop.fd, EV_READ | EV_PERSIST, on_gone,
			   pc);
	if (!pc->ev || event_add(pc->ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

void privc_free(struct privc *pc)
{
	if (!pc)
		return;
	if (pc->ev)
		event_free(pc->ev);
	close(pc->loop.fd);
	close(pc->work.fd);
	/* the helper exits at the end of its channels: wait for it, so that
	 * nothing of the daemon outlives it */
	while (waitpid(pc->pid, NULL, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_destroy(&pc->loop.lock);
	pthread_mutex_destroy(&pc->work.lock);
	free(pc);
}

/* Send one request on C (with SEND_FD, or -1).  C's lock held.  0 or
 * -errno. */
static int chan_send(struct chan *c, const void *req, size_t len, int send_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)req, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (send_fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &send_fd, sizeof(int));
	}
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : 0;
}

/* Receive the next answer on C into R, its descriptors into FDS (at most
 * MAXFD, the rest closed; *NFD of them).  C's lock held.  0 or -errno;
 * on an error no descriptor is left open. */
static int chan_recv(struct chan *c, struct priv_reply *r, int *fds,
		     size_t maxfd, size_t *nfd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PRIV_LISTEN_MAX)];
		struct cmsghdr align;
	} u;
	char buf[sizeof(*r) + 1];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;
	int ret = 0;

	*nfd = 0;
	do
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : -EPIPE;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (*nfd < maxfd)
				fds[(*nfd)++] = fd;
			else
				close(fd);
		}
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    priv_decode_reply(buf, (size_t)n, r) < 0)
		ret = -EBADMSG;
	if (ret) {
		for (size_t i = 0; i < *nfd; i++)
			close(fds[i]);
		*nfd = 0;
	}
	return ret;
}

static void call_failed(int ret)
{
	if (ret != -EPIPE)
		log_warnx("the privileged helper: %s", strerror(-ret));
}

static int listen_result(const struct priv_reply *r, int *got, size_t ngot,
			 size_t n, int *fds, int *errs, enum priv_step *steps,
			 struct netns_id *id, char *why, size_t whylen);

/* Receive the answers to the LISTENs sent ahead on C into their entries
 * (after an error, each that is left gets it).  C's lock held.  0 or
 * -errno. */
static int chan_drain(struct chan *c)
{
	struct priv_reply r;
	int got[PRIV_LISTEN_MAX];
	size_t ngot;
	int ret = 0;

	for (size_t i = 0; i < c->nahead; i++) {
		struct privc_listen *b = c->ahead[i];

		if (!ret)
			ret = chan_recv(c, &r, got, PRIV_LISTEN_MAX, &ngot);
		if (ret) {
			b->ret = ret;
			continue;
		}
		b->ret = listen_result(&r, got, ngot, b->n, b->fds, b->errs,
				       b->steps, &b->id, b->why,
				       sizeof(b->why));
	}
	c->nahead = 0;
	return ret;
}

/* One request (with SEND_FD, or -1) and its answer in R, the descriptors
 * it carries in FDS (at most MAXFD, the rest closed; *NFD of them).
 * Returns 0 (R->err is the helper's answer) or -errno: the helper is
 * gone, or sent something that is not an answer (-EBADMSG). */
static int call(struct chan *c, const void *req, size_t len, int send_fd,
		struct priv_reply *r, int *fds, size_t maxfd, size_t *nfd)
{
	int ret;

	*nfd = 0;
	pthread_mutex_lock(&c->lock);
	ret = chan_drain(c);
	if (!ret)
		ret = chan_send(c, req, len, send_fd);
	if (!ret)
		ret = chan_recv(c, r, fds, maxfd, nfd);
	pthread_mutex_unlock(&c->lock);
	if (ret)
		call_failed(ret);
	return ret;
}

static struct chan *chan_of(struct privc *pc, bool worker)
{
	return worker ? &pc->work : &pc->loop;
}

/* The LISTEN for NS (NULL: the host's) and the N addresses ADDRS. */
static int listen_fill(union priv_req *q, const char *ns,
		       const struct config_sockaddr *const *addrs,
		       const bool *dgram, size_t n)
{
	if (n < 1 || n > PRIV_LISTEN_MAX)
		return -EINVAL;
	if (ns && strlen(ns) > PRIV_NAME_MAX)
		return -ENAMETOOLONG;
	memset(q, 0, priv_listen_size((uint32_t)n));
	q->listen.h.type = PRIV_LISTEN;
	q->listen.h.len = (uint32_t)priv_listen_size((uint32_t)n);
	q->listen.n = (uint32_t)n;
	q->listen.host = !ns;
	if (ns)
		strcpy(q->listen.ns, ns);
	for (size_t i = 0; i < n; i++) {
		if (priv_addr_from_sa((const struct sockaddr *)&addrs[i]->sa,
				      addrs[i]->len, &q->listen.addr[i]) < 0)
			return -EAFNOSUPPORT;
		q->listen.addr[i].dgram = dgram[i];
	}
	return 0;
}

/* A LISTEN's answer R, with the NGOT descriptors GOT, for N addresses:
 * what privc_listen() returns. */
static int listen_result(const struct priv_reply *r, int *got, size_t ngot,
			 size_t n, int *fds, int *errs, enum priv_step *steps,
			 struct netns_id *id, char *why, size_t whylen)
{
	size_t k = 0;

	snprintf(why, whylen, "%s", r->why);
	if (r->err) {
		for (size_t i = 0; i < ngot; i++)
			close(got[i]);
		return r->err;
	}
	id->dev = (dev_t)r->dev;
	id->ino = (ino_t)r->ino;
	for (size_t i = 0; i < n; i++) {
		fds[i] = -1;
		errs[i] = i < r->n ? r->res[i].err : -EPROTO;
		steps[i] = i < r->n ? (enum priv_step)r->res[i].step :
				      PRIV_STEP_NONE;
		if (!errs[i]) {
			if (k < ngot)
				fds[i] = got[k++];
			else
				errs[i] = -EPROTO;
		}
	}
	while (k < ngot)
		close(got[k++]);
	return 0;
}

int privc_listen(struct privc *pc, const char *ns,
		 const struct config_sockaddr *const *addrs, const bool *dgram,
		 size_t n,
		 int *fds, int *errs, enum priv_step *steps,
		 struct netns_id *id, char *why, size_t whylen)
{
	union priv_req q;
	struct priv_reply r;
	int got[PRIV_LISTEN_MAX];
	size_t ngot;
	int ret;

	ret = listen_fill(&q, ns, addrs, dgram, n);
	if (ret)
		return ret;
	ret = call(&pc->loop, &q, q.listen.h.len, -1, &r, got,
		   PRIV_LISTEN_MAX, &ngot);
	if (ret)
		return ret;
	return listen_result(&r, got, ngot, n, fds, errs, steps, id, why,
			     whylen);
}

void privc_listen_send(struct privc *pc, struct privc_listen *const *b,
		       size_t n)
{
	struct chan *c = &pc->loop;
	union priv_req q;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = chan_drain(c);
	for (size_t i = 0; i < n; i++) {
		b[i]->sent = false;
		b[i]->ret = ret ? ret : listen_fill(&q, b[i]->ns, b[i]->addrs,
						    b[i]->dgram, b[i]->n);
		if (b[i]->ret)
			continue;
		if (c->nahead == PRIVC_BATCH_MAX) {
			b[i]->ret = -ENOBUFS;	/* the caller's mistake */
			continue;
		}
		ret = chan_send(c, &q, q.listen.h.len, -1);
		if (ret) {
			b[i]->ret = ret;
			continue;
		}
		b[i]->sent = true;
		c->ahead[c->nahead++] = b[i];
	}
	pthread_mutex_unlock(&c->lock);
	if (ret)
		call_failed(ret);
}

void privc_listen_recv(struct privc *pc)
{
	struct chan *c = &pc->loop;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = chan_drain(c);
	pthread_mutex_unlock(&c->lock);
	if (ret)
		call_failed(ret);
}

static int ns_call(struct privc *pc, bool worker, uint32_t type,
		   const char *ns, unsigned flags, struct priv_reply *r,
		   char *why, size_t whylen)
{
	struct priv_ns q;
	size_t nfd;
	int ret;

	memset(&q, 0, sizeof(q));
	q.h.type = type;
	q.h.len = sizeof(q);
	q.flags = flags;
	if (strlen(ns) > PRIV_NAME_MAX)
		return -ENAMETOOLONG;
	strcpy(q.ns, ns);
	ret = call(chan_of(pc, worker), &q, sizeof(q), -1, r, NULL, 0, &nfd);
	if (ret) {
		snprintf(why, whylen, "the privileged helper: %s",
			 strerror(-ret));
		return ret;
	}
	snprintf(why, whylen, "%s", r->why);
	return r->err;
}

int privc_ns_open(struct privc *pc, bool worker, const char *ns,
		  unsigned flags, uint32_t *handle, struct netns_id *id,
		  char *why, size_t whylen)
{
	struct priv_reply r;
	int ret = ns_call(pc, worker, PRIV_NS_OPEN, ns, flags, &r, why,
			  whylen);

	if (ret < 0)
		return ret;
	*handle = r.handle;
	id->dev = (dev_t)r.dev;
	id->ino = (ino_t)r.ino;
	return r.created ? 1 : 0;
}

int privc_ns_remove(struct privc *pc, bool worker, const char *ns,
		    char *why, size_t whylen)
{
	struct priv_reply r;

	return ns_call(pc, worker, PRIV_NS_REMOVE, ns, 0, &r, why, whylen);
}

void privc_ns_close(struct privc *pc, bool worker, uint32_t handle)
{
	struct priv_handle q = { { PRIV_NS_CLOSE, sizeof(q) }, handle };
	struct priv_reply r;
	size_t nfd;

	if (handle)
		(void)call(chan_of(pc, worker), &q, sizeof(q), -1, &r, NULL, 0,
			   &nfd);
}

int privc_nl_open(struct privc *pc, bool worker, uint32_t handle,
		  uint32_t *portid)
{
	struct priv_handle q = { { PRIV_NL_OPEN, sizeof(q) }, handle };
	struct priv_reply r;
	size_t nfd;
	int fd, ret;

	ret = call(chan_of(pc, worker), &q, sizeof(q), -1, &r, &fd, 1, &nfd);
	if (ret)
		return ret;
	if (r.err) {
		if (nfd)
			close(fd);
		return r.err;
	}
	if (!nfd)
		return -EPROTO;
	*portid = r.portid;
	return fd;
}

int privc_file_write(struct privc *pc, enum priv_file which, int memfd,
		     char *why, size_t whylen)
{
	struct priv_file_write q = { { PRIV_FILE_WRITE, sizeof(q) }, which };
	struct priv_reply r;
	size_t nfd;
	int ret;

	ret = call(&pc->work, &q, sizeof(q), memfd, &r, NULL, 0, &nfd);
	if (ret)
		return ret;
	snprintf(why, whylen, "%s", r.why);
	return r.err;
}

/* ---- provisioning's privileged calls ---- */

static int ops_ns_open(void *ctx, const char *name, unsigned flags,
		       int *handle, struct netns_id *id, char *why,
		       size_t len)
{
	uint32_t h;
	int r = privc_ns_open(ctx, true, name, flags, &h, id, why, len);

	if (r >= 0)
		*handle = (int)h;
	return r;
}

static int ops_ns_remove(void *ctx, const char *name, char *why,
			 size_t len)
{
	return privc_ns_remove(ctx, true, name, why, len);
}

static void ops_ns_close(void *ctx, bool worker, int handle)
{
	privc_ns_close(ctx, worker, (uint32_t)handle);
}

static int ops_nl_socket(void *ctx, bool worker, int handle,
			 uint32_t *portid)
{
	return privc_nl_open(ctx, worker, handle < 0 ? 0 : (uint32_t)handle,
			     portid);
}

const struct prov_privops *privc_prov_ops(struct privc *pc)
{
	static struct prov_privops ops = {
		ops_ns_open, ops_ns_remove, ops_ns_close, ops_nl_socket, NULL,
	};

	ops.ctx = pc;
	return &ops;
}
