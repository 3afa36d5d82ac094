/* SPDX-License-Identifier: MIT */
/* helper: the privileged half of nsrelayd.
 *
 * Theory of operation
 *
 * nsrelayd is two processes.  The engine (engine/) holds the event loop,
 * every client's bytes, the control socket, /metrics, the YAML: it runs as
 * the configured user with no capability at all, under a seccomp
 * allow-list.  This helper, forked by it at start while it was still root,
 * holds what needs privilege and talks to nobody but the engine: it stays
 * uid 0 with three capabilities (CAP_SYS_ADMIN for setns, unshare and the
 * bind mounts; CAP_NET_ADMIN for rtnetlink; CAP_NET_BIND_SERVICE for ports
 * below 1024), its own seccomp list, no new privileges, not dumpable.
 *
 * Its only input is the engine's requests (priv/proto.h): typed,
 * length-checked datagrams on two socketpairs, one for the engine's loop
 * and one for its worker threads, each served by a thread of its own here
 * so that a slow call (a namespace being created, a file synced) never
 * holds up a listener the loop is waiting for.  What each may do:
 *
 *   LISTEN      any file of the configured namespace directory that is a
 *               network namespace (never a link, never the helper's own),
 *               or the host's namespace; TCP sockets only;
 *   NS_OPEN,    with provisioning on, only names of the namespace
 *   NS_REMOVE   template, in that directory (netns/nsops.c);
 *   NL_OPEN     with provisioning on, rtnetlink sockets in the host's
 *               namespace or one it opened for provisioning, each behind
 *               the gate (priv/gate.c): the engine gets one end of a
 *               SOCK_SEQPACKET socketpair, a pump thread here checks every
 *               request it sends and forwards it to the kernel, and
 *               forwards the kernel's answers back; a refused request is
 *               logged and answered with an NLMSG_ERROR of EPERM whose
 *               message says why, so the engine's provisioning fails that
 *               step with the reason;
 *   FILE_WRITE  the hosts and state files named in the config at start,
 *               from records it checks (user names, addresses of the
 *               pools), written as before (priv/hostsfile.c).
 *
 * When the engine closes its end of a channel (it exits, or dies: the
 * kernel closes its descriptors) the helper exits; PR_SET_PDEATHSIG kills
 * it too if the engine dies first.  The engine sees the helper go as the
 * end of its loop channel (engine/privc.c) and exits non-zero: there is
 * never a half-alive daemon, and systemd restarts both.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <linux/netlink.h>

#include "config/config.h"
#include "netns/netns.h"
#include "netns/nsops.h"
#include "priv/gate.h"
#include "priv/helper.h"
#include "priv/hostsfile.h"
#include "priv/proto.h"
#include "priv/sandbox.h"

#define HANDLES_MAX	1024		/* namespaces open for provisioning */
#define PROXIES_MAX	1024		/* rtnetlink sockets */
#define NL_BUF		(64 * 1024)
#define FILE_MAX	(64u << 20)	/* a FILE_WRITE's records */

struct handle {
	uint32_t id;			/* 0: free */
	int fd;
};

struct proxy {
	int end;			/* ours of the socketpair; -1: free */
	int nl;				/* the rtnetlink socket */
	enum gate_sock kind;
};

static struct {
	const struct config *cfg;
	char *state_path;		/* next to the control socket */
	pthread_mutex_t lock;		/* handles, proxies */
	struct handle handles[HANDLES_MAX];
	uint32_t next_id;
	struct proxy proxies[PROXIES_MAX];
	int wake[2];			/* the pump's: the set changed */
} H = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* One line on stderr (the journal's stream, or the terminal: the engine's
 * log reaches the same place), in the display form of engine/log.c's
 * lines would need the engine's code: here, control bytes become '?'. */
static void hlog(const char *level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hlog(const char *level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "nsrelayd: %s: helper: %s\n", level, buf);
}

/* ------------------------------------------------------------ handles */

static int handle_fd_locked(uint32_t id)
{
	for (size_t i = 0; i < HANDLES_MAX; i++)
		if (H.handles[i].id && H.handles[i].id == id)
			return H.handles[i].fd;
	return -1;
}

/* the gate's callback: called from the pump with H.lock held */
static int gate_fd(void *arg, uint32_t id)
{
	(void)arg;
	return id ? handle_fd_locked(id) : -1;
}

static uint32_t handle_add(int fd)
{
	uint32_t id = 0;

	pthread_mutex_lock(&H.lock);
	for (size_t i = 0; i < HANDLES_MAX; i++)
		if (!H.handles[i].id) {
			if (!++H.next_id)
				H.next_id = 1;
			id = H.handles[i].id = H.next_id;
			H.handles[i].fd = fd;
			break;
		}
	pthread_mutex_unlock(&H.lock);
	return id;
}

static void handle_close(uint32_t id)
{
	pthread_mutex_lock(&H.lock);
	for (size_t i = 0; i < HANDLES_MAX; i++)
		if (H.handles[i].id == id) {
			close(H.handles[i].fd);
			H.handles[i].id = 0;
			H.handles[i].fd = -1;
		}
	pthread_mutex_unlock(&H.lock);
}

/* ------------------------------------------------------------ answers */

static void reply_init(struct priv_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->h.type = PRIV_REPLY;
	r->h.len = sizeof(*r);
}

/* Send R with the N descriptors FDS on FD.  A failure means the engine is
 * gone. */
static void reply_send(int fd, const struct priv_reply *r, const int *fds,
		       size_t n)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PRIV_LISTEN_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)r, sizeof(*r) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w;

	if (n) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	do
		w = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		_exit(0);
}

static void why(struct priv_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void why(struct priv_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ requests */

static enum priv_step step_of(enum nsops_step s)
{
	switch (s) {
	case NSOPS_STEP_SOCKET: return PRIV_STEP_SOCKET;
	case NSOPS_STEP_SETSOCKOPT: return PRIV_STEP_SETSOCKOPT;
	case NSOPS_STEP_BIND: return PRIV_STEP_BIND;
	case NSOPS_STEP_LISTEN: return PRIV_STEP_LISTEN;
	}
	return PRIV_STEP_NONE;
}

static void do_listen(int chan, const struct priv_listen *q)
{
	struct priv_reply r;
	int fds[PRIV_LISTEN_MAX], res[PRIV_LISTEN_MAX], nsfd = -1;
	struct sockaddr_storage ss[PRIV_LISTEN_MAX];
	const struct sockaddr *sas[PRIV_LISTEN_MAX];
	socklen_t lens[PRIV_LISTEN_MAX];
	bool dgram[PRIV_LISTEN_MAX];
	enum nsops_step steps[PRIV_LISTEN_MAX];
	size_t nfds = 0;
	struct netns_id id = { 0 };

	reply_init(&r);
	if (!q->host) {
		nsfd = netns_open(H.cfg->netns_dir, q->ns, &id);
		if (nsfd < 0) {
			r.err = nsfd;
			reply_send(chan, &r, NULL, 0);
			return;
		}
		if (netns_is_host(&id)) {
			close(nsfd);
			r.err = -EPERM;
			why(&r, "the helper's own network namespace");
			reply_send(chan, &r, NULL, 0);
			return;
		}
		r.dev = (uint64_t)id.dev;
		r.ino = (uint64_t)id.ino;
	}
	r.n = q->n;
	for (uint32_t i = 0; i < q->n; i++) {
		lens[i] = priv_addr_to_sa(&q->addr[i], &ss[i]);
		sas[i] = (const struct sockaddr *)&ss[i];
		dgram[i] = q->addr[i].dgram;
	}
	nsops_listen_all(nsfd, sas, lens, dgram, q->n, res, steps);
	for (uint32_t i = 0; i < q->n; i++) {
		if (res[i] < 0) {
			r.res[i].err = res[i];
			r.res[i].step = step_of(steps[i]);
			continue;
		}
		fds[nfds++] = res[i];
	}
	if (nsfd >= 0)
		close(nsfd);
	reply_send(chan, &r, fds, nfds);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

/* May provisioning touch the namespace NAME?  With provisioning on, only a
 * name of its template. */
static int prov_name_ok(const char *name, struct priv_reply *r)
{
	const struct config_provision *p = &H.cfg->provision;

	if (!p->enabled) {
		why(r, "provisioning is not configured");
		return -EPERM;
	}
	if (!gate_name_matches(p->pool.ns_tmpl, name)) {
		why(r, "%s is not a name of the namespace template %s", name,
		    p->pool.ns_tmpl);
		hlog("warning", "refused: namespace %s: %s", name, r->why);
		return -EPERM;
	}
	return 0;
}

static void do_ns_open(int chan, const struct priv_ns *q)
{
	struct priv_reply r;
	struct netns_id id = { 0 };
	int fd, ret;

	reply_init(&r);
	ret = prov_name_ok(q->ns, &r);
	if (!ret) {
		ret = nsops_open(H.cfg->netns_dir, q->ns, q->flags, &fd, &id,
				 r.why, sizeof(r.why));
		if (ret >= 0) {
			r.created = ret == 1;
			r.dev = (uint64_t)id.dev;
			r.ino = (uint64_t)id.ino;
			r.handle = handle_add(fd);
			if (!r.handle) {
				close(fd);
				ret = -EMFILE;
				why(&r, "%u namespaces open for provisioning",
				    HANDLES_MAX);
			} else {
				ret = 0;
			}
		}
	}
	r.err = ret;
	reply_send(chan, &r, NULL, 0);
}

static void do_ns_remove(int chan, const struct priv_ns *q)
{
	struct priv_reply r;

	reply_init(&r);
	r.err = prov_name_ok(q->ns, &r);
	if (!r.err)
		r.err = nsops_remove(H.cfg->netns_dir, q->ns, r.why,
				     sizeof(r.why));
	reply_send(chan, &r, NULL, 0);
}

static void do_ns_close(int chan, const struct priv_handle *q)
{
	struct priv_reply r;

	reply_init(&r);
	handle_close(q->handle);
	reply_send(chan, &r, NULL, 0);
}

static void do_nl_open(int chan, const struct priv_handle *q)
{
	struct priv_reply r;
	int pair[2] = { -1, -1 }, nsfd = -1, nl = -1;
	char c = 0;

	reply_init(&r);
	if (!H.cfg->provision.enabled) {
		r.err = -EPERM;
		why(&r, "provisioning is not configured");
		goto out;
	}
	if (q->handle) {
		pthread_mutex_lock(&H.lock);
		nsfd = handle_fd_locked(q->handle);
		if (nsfd >= 0)
			nsfd = fcntl(nsfd, F_DUPFD_CLOEXEC, 0);
		pthread_mutex_unlock(&H.lock);
		if (nsfd < 0) {
			r.err = -EPERM;
			why(&r, "not a namespace opened for provisioning");
			goto out;
		}
	}
	nl = nsops_nl_socket(nsfd, &r.portid);
	if (nsfd >= 0)
		close(nsfd);
	if (nl < 0) {
		r.err = nl;
		why(&r, "rtnetlink socket: %s", strerror(-nl));
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		r.err = -errno;
		close(nl);
		goto out;
	}
	pthread_mutex_lock(&H.lock);
	r.err = -EMFILE;
	for (size_t i = 0; i < PROXIES_MAX; i++)
		if (H.proxies[i].end < 0) {
			H.proxies[i].end = pair[1];
			H.proxies[i].nl = nl;
			H.proxies[i].kind = q->handle ? GATE_NS : GATE_HOST;
			r.err = 0;
			break;
		}
	pthread_mutex_unlock(&H.lock);
	if (r.err) {
		close(pair[1]);
		close(nl);
		close(pair[0]);
		pair[0] = -1;
		goto out;
	}
	if (write(H.wake[1], &c, 1) < 0)
		hlog("warning", "waking the pump: %s", strerror(errno));
out:
	reply_send(chan, &r, pair[0] >= 0 ? &pair[0] : NULL, pair[0] >= 0);
	if (pair[0] >= 0)
		close(pair[0]);
}

/* The records of a FILE_WRITE's memfd: checked, then written. */
static int write_file(const struct priv_file_write *q, int memfd,
		      struct priv_reply *r)
{
	const struct config_provision *p = &H.cfg->provision;
	size_t recsz = q->which == PRIV_FILE_HOSTS ?
		       sizeof(struct priv_host_rec) :
		       sizeof(struct priv_state_rec);
	struct hostsfile_entry *e = NULL;
	const char **lines = NULL;
	struct stat st;
	void *map = MAP_FAILED;
	size_t n;
	int ret;

	if (!p->enabled) {
		why(r, "provisioning is not configured");
		return -EPERM;
	}
	if (memfd < 0) {
		why(r, "FILE_WRITE without its memfd");
		return -EBADMSG;
	}
	if (fstat(memfd, &st) < 0)
		return -errno;
	if (st.st_size < 0 || (size_t)st.st_size > FILE_MAX ||
	    (size_t)st.st_size % recsz) {
		why(r, "records of a wrong size");
		return -EBADMSG;
	}
	n = (size_t)st.st_size / recsz;
	if (n) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
			   memfd, 0);
		if (map == MAP_FAILED)
			return -errno;
	}
	e = calloc(n + 1, sizeof(*e));
	lines = calloc(n + 2, sizeof(*lines));
	ret = -ENOMEM;
	if (!e || !lines)
		goto out;
	lines[0] = "# nsrelayd: users provisioned on request";
	for (size_t i = 0; i < n; i++) {
		const char *user = (const char *)map + i * recsz;

		if (!memchr(user, '\0', PRIV_NAME_MAX + 1) ||
		    !config_valid_ns_name(user) || strpbrk(user, " \t\n#:")) {
			why(r, "record %zu: not a user name", i);
			ret = -EBADMSG;
			goto out;
		}
		lines[i + 1] = user;
		if (q->which == PRIV_FILE_HOSTS) {
			const struct priv_host_rec *h = (const void *)user;
			uint32_t a, base = ntohl(p->pool.v4_base.s_addr);
			uint32_t mask = ~0u << (32 - p->pool.v4_plen);

			memcpy(&a, h->v4, 4);
			if ((ntohl(a) & mask) != (base & mask) ||
			    memcmp(h->v6, &p->pool.v6_base, 6)) {
				why(r, "record %zu: an address outside the "
				    "pools", i);
				ret = -EBADMSG;
				goto out;
			}
			e[i].name = user;
			memcpy(&e[i].v4, h->v4, 4);
			memcpy(&e[i].v6, h->v6, 16);
		}
	}
	if (q->which == PRIV_FILE_HOSTS)
		ret = p->hosts_file ? hostsfile_write(p->hosts_file, e, n,
						      p->domain) : 0;
	else
		ret = H.state_path ? hostsfile_write_lines(H.state_path,
							   lines) : 0;
	if (ret < 0)
		why(r, "writing %s: %s", q->which == PRIV_FILE_HOSTS ?
		    p->hosts_file : H.state_path,
		    ret == -EPERM ? "its directory must be root's and "
		    "writable by root only" : strerror(-ret));
out:
	free(e);
	free(lines);
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	return ret;
}

/* ------------------------------------------------------------ channels */

/* Serve the requests of one channel until the engine closes it. */
static void serve(int chan)
{
	for (;;) {
		union priv_req q;
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		char buf[sizeof(union priv_req) + 1];
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
		};
		struct priv_reply r;
		const char *bad;
		int memfd = -1, type;
		ssize_t n;
		struct cmsghdr *c;

		n = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);	/* the engine is gone */
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) /
				     sizeof(int); i++) {
					int fd;

					memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
					       sizeof(fd));
					if (memfd < 0)
						memfd = fd;
					else
						close(fd);
				}
		type = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ?
		       (bad = "truncated", -EBADMSG) :
		       priv_decode(buf, (size_t)n, &q, &bad);
		if (type < 0) {
			hlog("warning", "refused a request: %s", bad);
			reply_init(&r);
			r.err = -EBADMSG;
			why(&r, "%s", bad);
			reply_send(chan, &r, NULL, 0);
		} else if (type != PRIV_FILE_WRITE && memfd >= 0) {
			reply_init(&r);
			r.err = -EBADMSG;
			why(&r, "a descriptor with %s", priv_type_name(type));
			reply_send(chan, &r, NULL, 0);
		} else {
			switch (type) {
			case PRIV_LISTEN:
				do_listen(chan, &q.listen);
				break;
			case PRIV_NS_OPEN:
				do_ns_open(chan, &q.ns);
				break;
			case PRIV_NS_REMOVE:
				do_ns_remove(chan, &q.ns);
				break;
			case PRIV_NS_CLOSE:
				do_ns_close(chan, &q.handle);
				break;
			case PRIV_NL_OPEN:
				do_nl_open(chan, &q.handle);
				break;
			case PRIV_FILE_WRITE:
				reply_init(&r);
				r.err = write_file(&q.file, memfd, &r);
				reply_send(chan, &r, NULL, 0);
				break;
			}
		}
		if (memfd >= 0)
			close(memfd);
	}
}

static void *serve_thread(void *arg)
{
	serve((int)(intptr_t)arg);
	return NULL;
}

/* ------------------------------------------------------------ the pump */

/* Answer a refused request on proxy P with NLMSG_ERROR EPERM, the reason
 * as its extended ack message, as the kernel would. */
static void refuse(const struct proxy *p, const struct nlmsghdr *req,
		   const char *reason)
{
	union {
		char buf[512];
		struct nlmsghdr align;
	} u;
	struct nlmsghdr *nlh = (struct nlmsghdr *)u.buf;
	struct nlmsgerr *e;
	struct nlattr *a;
	size_t rlen = strlen(reason) + 1;

	if (rlen > 300)
		rlen = 300;
	memset(&u, 0, sizeof(u));
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
	nlh->nlmsg_seq = req ? req->nlmsg_seq : 0;
	nlh->nlmsg_pid = req ? req->nlmsg_pid : 0;
	e = (struct nlmsgerr *)NLMSG_DATA(nlh);
	e->error = -EPERM;
	if (req)
		e->msg = *req;
	a = (struct nlattr *)((char *)e + NLMSG_ALIGN(sizeof(*e)));
	a->nla_type = NLMSGERR_ATTR_MSG;
	a->nla_len = (uint16_t)(NLA_HDRLEN + rlen);
	memcpy((char *)a + NLA_HDRLEN, reason, rlen - 1);
	nlh->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*e)) +
				    NLA_ALIGN(a->nla_len));
	(void)send(p->end, u.buf, nlh->nlmsg_len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void proxy_close_locked(struct proxy *p)
{
	close(p->end);
	close(p->nl);
	p->end = p->nl = -1;
}

/* A request from the engine on P: through the gate, then to the kernel. */
static void pump_request(struct proxy *p, char *buf)
{
	char reason[256];
	ssize_t n;

	n = recv(p->end, buf, NL_BUF, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		proxy_close_locked(p);	/* the engine closed it */
		return;
	}
	if (n > NL_BUF) {
		refuse(p, NULL, "gate: a request larger than 64 KiB");
		return;
	}
	if (gate_check(&H.cfg->provision.pool, p->kind, buf, (size_t)n,
		       gate_fd, NULL, reason, sizeof(reason)) < 0) {
		char m[sizeof(reason) + 8];

		hlog("warning", "gate: refused: %s", reason);
		snprintf(m, sizeof(m), "gate: %s", reason);
		refuse(p, (size_t)n >= sizeof(struct nlmsghdr) ?
		       (struct nlmsghdr *)buf : NULL, m);
		return;
	}
	if (send(p->nl, buf, (size_t)n, 0) < 0) {
		char m[96];

		snprintf(m, sizeof(m), "sendmsg: %s", strerror(errno));
		refuse(p, (struct nlmsghdr *)buf, m);
	}
}

/* The kernel's answers on P: to the engine, as they are. */
static void pump_answer(struct proxy *p, char *buf)
{
	ssize_t n = recv(p->nl, buf, NL_BUF, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 && errno == ENOBUFS) {
		/* answers were lost: the engine must know (nl.c fails the
		 * socket): close it, which it reads as an error */
		proxy_close_locked(p);
		return;
	}
	if (n <= 0)
		return;
	if (send(p->end, buf, (size_t)n, MSG_NOSIGNAL) < 0 && errno == EPIPE)
		proxy_close_locked(p);
}

static void *pump(void *arg)
{
	static struct pollfd pfd[2 * PROXIES_MAX + 1];
	static size_t who[2 * PROXIES_MAX + 1];
	char *buf = malloc(NL_BUF + 1);

	(void)arg;
	if (!buf) {
		hlog("error", "out of memory");
		_exit(1);
	}
	for (;;) {
		size_t n = 0;

		pfd[n].fd = H.wake[0];
		pfd[n++].events = POLLIN;
		pthread_mutex_lock(&H.lock);
		for (size_t i = 0; i < PROXIES_MAX; i++)
			if (H.proxies[i].end >= 0) {
				pfd[n].fd = H.proxies[i].end;
				pfd[n].events = POLLIN;
				who[n++] = i;
				pfd[n].fd = H.proxies[i].nl;
				pfd[n].events = POLLIN;
				who[n++] = i;
			}
		pthread_mutex_unlock(&H.lock);
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			hlog("error", "poll: %s", strerror(errno));
			_exit(1);
		}
		if (pfd[0].revents) {
			char c[64];

			(void)!read(H.wake[0], c, sizeof(c));
		}
		pthread_mutex_lock(&H.lock);
		for (size_t k = 1; k < n; k++) {
			struct proxy *p = &H.proxies[who[k]];

			if (!pfd[k].revents || p->end < 0)
				continue;
			if (pfd[k].fd == p->end)
				pump_request(p, buf);
			else if (pfd[k].fd == p->nl)
				pump_answer(p, buf);
		}
		pthread_mutex_unlock(&H.lock);
	}
	return NULL;
}

/* ------------------------------------------------------------ start */

void priv_helper_main(int loop_fd, int work_fd, const struct config *cfg)
{
	pthread_t t;
	int r;

	/* if the engine dies before this is set, the check below sees it */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
	    getppid() == 1) {
		hlog("error", "the engine is gone");
		_exit(1);
	}
	/* the engine's signals are the engine's: systemd's SIGTERM and
	 * SIGHUP reach both, the engine stops, then this one */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	H.cfg = cfg;
	H.next_id = 0;
	for (size_t i = 0; i < PROXIES_MAX; i++)
		H.proxies[i].end = H.proxies[i].nl = -1;
	if (cfg->provision.enabled)
		H.state_path = config_state_path(cfg->control.path);
	if (pipe2(H.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		hlog("error", "pipe: %s", strerror(errno));
		_exit(1);
	}
	r = netns_host_init();
	if (r < 0) {
		hlog("error", "opening the host network namespace: %s",
		     strerror(-r));
		_exit(1);
	}
	r = sandbox_helper(cfg->provision.enabled);
	if (r < 0) {
		hlog("error", "privileges and seccomp: %s", strerror(-r));
		_exit(1);
	}
	if (pthread_create(&t, NULL, serve_thread, (void *)(intptr_t)work_fd) ||
	    pthread_create(&t, NULL, pump, NULL)) {
		hlog("error", "cannot start its threads");
		_exit(1);
	}
	serve(loop_fd);
	_exit(0);
}
