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
 * timeout is the request timeout).  Checking a link (deprovision, when the
 * kernel did not take the veth with its namespace in time, or events were
 * lost): RTM_GETLINK by index on the same socket; the index is still ours
 * only if it still bears HOST_IF (an index can be reused), and then, when
 * asked, RTM_DELLINK.  Creating a namespace: the worker enters
 * a new namespace with netns_run_in(NETNS_NEW), keeps a descriptor of it,
 * comes back home (or aborts), and bind-mounts it on the placeholder file
 * through /proc/self/fd of the placeholder's own descriptor (the descriptor
 * table is shared): whatever is at its name by then, the mount lands on the
 * file the job created.  Removing one: umount2(MNT_DETACH |
 * UMOUNT_NOFOLLOW) and unlink.
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

enum op_kind { OP_DEL_LINK, OP_CHECK_LINK, OP_NS_CREATE, OP_NS_REMOVE };

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
	bool del;		/* OP_CHECK_LINK: delete it if it is there */
	int pfd;		/* OP_NS_CREATE: the placeholder (closed there) */
	/* out */
	bool exists;		/* OP_CHECK_LINK: index is still ifname */
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

static const struct nl_attr_rule link_rules[] = {
	{ IFLA_IFNAME, MNL_TYPE_NUL_STRING, 0 },
};
static const struct nl_policy link_policy = NL_POLICY(IFLA_MAX, link_rules);

/* The answer to RTM_GETLINK by index: is it still op->ifname? */
static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct prov_work_op *op = data;
	const struct nlattr *tb[IFLA_MAX + 1];
	const struct ifinfomsg *ifi;

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    nl_attr_parse(nlh, sizeof(*ifi), &link_policy, tb) < 0)
		return MNL_CB_OK;
	ifi = mnl_nlmsg_get_payload(nlh);
	if ((uint32_t)ifi->ifi_index == op->index && tb[IFLA_IFNAME] &&
	    !strcmp(mnl_attr_get_str(tb[IFLA_IFNAME]), op->ifname))
		op->exists = true;
	return MNL_CB_OK;
}

/* Send a link request (RTM_GETLINK or RTM_DELLINK, by op->index or else by
 * op->ifname) on the worker's socket and wait for its ACK; op->err is the
 * ACK's error, or -errno, -ETIMEDOUT. */
static void work_link_req(struct prov_work_op *op, uint16_t type)
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
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq = ++prov->wseq;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	if (op->index)
		ifi->ifi_index = (int)op->index;
	else
		mnl_attr_put_strz(nlh, IFLA_IFNAME, op->ifname);
	if (type == RTM_GETLINK)
		mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	op->what = type == RTM_GETLINK ? "RTM_GETLINK" : "RTM_DELLINK";
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
		r = mnl_cb_run2(buf.b, (size_t)n, seq, portid,
				type == RTM_GETLINK ? link_cb : NULL, op, ctl,
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

static void work_del_link(struct prov_work_op *op)
{
	work_link_req(op, RTM_DELLINK);
}

/* Is op->index still op->ifname?  Then delete it if asked. */
static void work_check_link(struct prov_work_op *op)
{
	work_link_req(op, RTM_GETLINK);
	if (op->err == -ENODEV)
		op->err = 0;		/* gone */
	if (op->err || !op->exists || !op->del)
		return;
	work_link_req(op, RTM_DELLINK);
	if (op->err == -ENODEV) {	/* went meanwhile */
		op->err = 0;
		op->exists = false;
	}
	if (!op->err)
		op->exists = false;	/* deleted */
}

static int ns_keep(void *arg)
{
	int *fd = arg;

	*fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

static void work_ns_create(struct prov_work_op *op)
{
	char src[64], dst[64];

	op->what = "unshare(CLONE_NEWNET)";
	op->err = netns_run_in(NETNS_NEW, ns_keep, &op->nsfd);
	if (!op->err) {
		/* onto the placeholder's descriptor, not its name */
		snprintf(src, sizeof(src), "/proc/self/fd/%d", op->nsfd);
		snprintf(dst, sizeof(dst), "/proc/self/fd/%d", op->pfd);
		op->what = "bind-mount the namespace";
		if (mount(src, dst, "none", MS_BIND, NULL) < 0)
			op->err = -errno;
	}
	close(op->pfd);
	op->pfd = -1;
}

static void work_ns_remove(struct prov_work_op *op)
{
	op->what = "unmount";
	if (umount2(op->path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 &&
	    errno != EINVAL && errno != ENOENT) {
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
	case OP_CHECK_LINK:
		work_check_link(op);
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
	case OP_CHECK_LINK:
		if (op->err)
			prov_job_error(j, op->err, "%s host interface %s: %s: %s%s%s%s",
				       op->del ? "delete" : "look up",
				       j->spec.host_if, op->what,
				       strerror(-op->err),
				       op->extack[0] ? " (kernel: " : "",
				       op->extack, op->extack[0] ? ")" : "");
		else if (!op->exists)
			j->gone = true;
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
	op->pfd = -1;
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

void prov_work_check_link(struct prov_job *j, bool del)
{
	struct prov_work_op *op = op_new(j, OP_CHECK_LINK);

	if (op) {
		op->index = j->host.index;
		op->del = del;
	}
	(void)op_start(j, op, del ? "delete host interface"
				  : "look up host interface");
}

int prov_work_ns_create(struct prov_job *j, int pfd)
{
	struct prov_work_op *op = op_new(j, OP_NS_CREATE);
	int err;

	if (op)
		op->pfd = pfd;
	err = op_start(j, op, "create namespace");
	if (err)
		close(pfd);	/* op_start freed op: the worker never saw it */
	return err;
}

void prov_work_ns_remove(struct prov_job *j)
{
	(void)op_start(j, op_new(j, OP_NS_REMOVE), "remove namespace");
}
