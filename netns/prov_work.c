/* SPDX-License-Identifier: MIT */
/* prov_work: the provisioner's blocking kernel calls, run on a worker.
 *
 * Theory of operation
 *
 * Some kernel calls block the calling thread for milliseconds: deleting a
 * veth waits for RCU grace periods inside sendmsg() (20-30 ms each),
 * unshare(CLONE_NEWNET) builds a whole network stack, and mount/umount
 * synchronise RCU too.  Made from the loop, a burst of them stalls every
 * relayed connection.  So they run on the provisioner's offload worker
 * (netns/offload.h) and come back to the loop as completions.
 *
 * The loop stays the single owner of provisioning state: a work item gets a
 * copy of what it needs (path, index, name, timeout) in a struct prov_work_op,
 * the worker fills in the result (-errno, a kernel message, a descriptor),
 * and the done callback, on the loop, applies it to the job: it counts in
 * j->pending like a netlink request, and the job advances when its step's
 * last request or operation is in.  When the provisioner is being freed,
 * offload_free() drains the worker first, and done callbacks then only
 * release what they own.
 *
 * Deleting a link: RTM_DELLINK with NLM_F_ACK on a blocking netlink socket
 * that only the worker touches (opened there on first use; its receive
 * timeout is the request timeout).  Creating a namespace: the worker enters
 * a new namespace with netns_run_in(NETNS_NEW), keeps a descriptor of it,
 * comes back home (or aborts), and bind-mounts it on the placeholder file
 * through /proc/self/fd (the descriptor table is shared).  Removing one:
 * umount2(MNT_DETACH) and unlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "netns/netns.h"
#include "netns/offload.h"
#include "netns/prov_int.h"

enum op_kind { OP_DEL_LINK, OP_NS_CREATE, OP_NS_REMOVE };

struct prov_work_op {
	struct prov_job *job;
	struct prov *prov;
	enum op_kind kind;
	enum req_kind req;	/* OP_DEL_LINK: how to take errors */
	/* in */
	char path[PATH_MAX];
	char ifname[IFNAMSIZ];
	uint32_t index;		/* 0: by name */
	unsigned timeout_ms;
	/* out */
	int err;
	int nsfd;
	const char *what;	/* the call that failed */
	char extack[128];
};

/* --- on the worker */

static int worker_sock(struct prov *prov, unsigned timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int one = 1, fd;

	if (prov->wsock)
		return 0;
	prov->wsock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!prov->wsock)
		return -errno;
	fd = mnl_socket_get_fd(prov->wsock);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)mnl_socket_setsockopt(prov->wsock, NETLINK_EXT_ACK, &one,
				    sizeof(one));
	(void)mnl_socket_setsockopt(prov->wsock, NETLINK_CAP_ACK, &one,
				    sizeof(one));
	if (mnl_socket_bind(prov->wsock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = -errno;

		mnl_socket_close(prov->wsock);
		prov->wsock = NULL;
		return err;
	}
	return 0;
}

static int ack_cb_error(const struct nlmsghdr *nlh, void *data)
{
	struct prov_work_op *op = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e))
		return MNL_CB_ERROR;
	if (e->error && (nlh->nlmsg_flags & NLM_F_ACK_TLVS)) {
		mnl_attr_for_each(a, nlh, sizeof(*e)) {
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
			    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
				snprintf(op->extack, sizeof(op->extack), "%s",
					 mnl_attr_get_str(a));
		}
	}
	op->err = e->error;
	return MNL_CB_STOP;
}

static void work_del_link(struct prov_work_op *op)
{
	union {
		struct nlmsghdr align;
		char b[MNL_SOCKET_BUFFER_SIZE];
	} buf;
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = ack_cb_error };
	struct prov *prov = op->prov;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	uint32_t seq, portid;
	ssize_t n;
	int r;

	op->what = "netlink socket";
	op->err = worker_sock(prov, op->timeout_ms);
	if (op->err)
		return;
	nlh = mnl_nlmsg_put_header(buf.b);
	nlh->nlmsg_type = RTM_DELLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq = ++prov->wseq;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	if (op->index)
		ifi->ifi_index = (int)op->index;
	else
		mnl_attr_put_strz(nlh, IFLA_IFNAME, op->ifname);
	op->what = "RTM_DELLINK";
	if (mnl_socket_sendto(prov->wsock, nlh, nlh->nlmsg_len) < 0) {
		op->err = -errno;
		return;
	}
	portid = mnl_socket_get_portid(prov->wsock);
	op->err = -EPROTO;
	for (;;) {
		n = mnl_socket_recvfrom(prov->wsock, buf.b, sizeof(buf.b));
		if (n < 0) {
			op->err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		r = mnl_cb_run2(buf.b, (size_t)n, seq, portid, NULL, op, ctl,
				NLMSG_MIN_TYPE);
		if (r == MNL_CB_STOP)
			break;		/* op->err is the ACK's */
		if (r < 0 && errno != ESRCH && errno != EPROTO) {
			op->err = -errno;
			break;
		}
		/* another sequence number: a late answer, read on */
	}
	if (op->err == -ETIMEDOUT) {	/* the answer may still come */
		mnl_socket_close(prov->wsock);
		prov->wsock = NULL;
	}
}

static int ns_keep(void *arg)
{
	int *fd = arg;

	*fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

static void work_ns_create(struct prov_work_op *op)
{
	char src[64];

	op->what = "unshare(CLONE_NEWNET)";
	op->err = netns_run_in(NETNS_NEW, ns_keep, &op->nsfd);
	if (op->err)
		return;
	snprintf(src, sizeof(src), "/proc/self/fd/%d", op->nsfd);
	op->what = "bind-mount the namespace";
	if (mount(src, op->path, "none", MS_BIND, NULL) < 0)
		op->err = -errno;
}

static void work_ns_remove(struct prov_work_op *op)
{
	op->what = "unmount";
	if (umount2(op->path, MNT_DETACH) < 0 && errno != EINVAL &&
	    errno != ENOENT) {
		op->err = -errno;
		return;
	}
	op->what = "remove";
	if (unlink(op->path) < 0 && errno != ENOENT)
		op->err = -errno;
}

static void op_work(void *arg)
{
	struct prov_work_op *op = arg;

	switch (op->kind) {
	case OP_DEL_LINK:
		work_del_link(op);
		break;
	case OP_NS_CREATE:
		work_ns_create(op);
		break;
	case OP_NS_REMOVE:
		work_ns_remove(op);
		break;
	}
}

/* --- on the loop */

static void op_done_del_link(struct prov_job *j, struct prov_work_op *op)
{
	int err = op->err;

	if (err == -ENODEV && op->req == R_DEL)
		err = 0;		/* already gone */
	if (op->req == R_BEST_EFFORT)
		err = 0;
	if (err)
		prov_job_error(j, err, "delete host interface %s: %s%s%s%s",
			       j->spec.host_if, strerror(-err),
			       op->extack[0] ? " (kernel: " : "", op->extack,
			       op->extack[0] ? ")" : "");
}

static void op_done(void *arg)
{
	struct prov_work_op *op = arg;
	struct prov_job *j = op->job;

	j->pending--;
	if (op->prov->dying) {
		if (op->nsfd >= 0)
			close(op->nsfd);
		free(op);
		return;
	}
	switch (op->kind) {
	case OP_DEL_LINK:
		op_done_del_link(j, op);
		break;
	case OP_NS_CREATE:
		if (op->err) {
			if (op->nsfd >= 0)
				close(op->nsfd);
			(void)unlink(op->path);
			prov_job_error(j, op->err, "create namespace %s: %s: %s",
				       op->path, op->what, strerror(-op->err));
			break;
		}
		j->nsfd = op->nsfd;
		j->ns_created = true;
		break;
	case OP_NS_REMOVE:
		if (op->err)
			prov_job_error(j, op->err, "%s %s: %s", op->what,
				       op->path, strerror(-op->err));
		break;
	}
	free(op);
	if (!j->pending)
		prov_job_advance(j);
}

static struct prov_work_op *op_new(struct prov_job *j, enum op_kind kind)
{
	struct prov_work_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->job = j;
	op->prov = j->prov;
	op->kind = kind;
	op->nsfd = -1;
	op->timeout_ms = j->prov->timeout_ms;
	snprintf(op->path, sizeof(op->path), "%s", j->path);
	snprintf(op->ifname, sizeof(op->ifname), "%s", j->spec.host_if);
	return op;
}

static int op_start(struct prov_job *j, struct prov_work_op *op,
		    const char *what)
{
	struct prov *prov = j->prov;
	int err = op ? 0 : -ENOMEM;

	if (!err && !prov->off && !(prov->off = offload_new(prov->base)))
		err = -errno;
	if (!err)
		err = offload_run(prov->off, op_work, op_done, op);
	if (err) {
		free(op);
		prov_job_error(j, err, "%s: worker: %s", what, strerror(-err));
		return err;
	}
	j->pending++;
	return 0;
}

void prov_work_del_link(struct prov_job *j, enum req_kind kind, bool by_name)
{
	struct prov_work_op *op = op_new(j, OP_DEL_LINK);

	if (op) {
		op->req = kind;
		op->index = by_name ? 0 : j->host.index;
	}
	(void)op_start(j, op, "delete host interface");
}

int prov_work_ns_create(struct prov_job *j)
{
	return op_start(j, op_new(j, OP_NS_CREATE), "create namespace");
}

void prov_work_ns_remove(struct prov_job *j)
{
	(void)op_start(j, op_new(j, OP_NS_REMOVE), "remove namespace");
}
