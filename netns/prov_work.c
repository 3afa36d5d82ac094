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
 * Deleting a link: RTM_DELLINK by name (never by index: an index may
 * belong to another link by now, and the helper's gate lets only names of
 * the template through) with NLM_F_ACK on a blocking netlink socket that
 * only the worker touches (made by the privileged calls on first use; its
 * receive timeout is the request timeout).  Checking a link (deprovision,
 * when the kernel did not take the veth with its namespace in time, or
 * events were lost): RTM_GETLINK by index on the same socket; the index
 * is still ours only if it still bears HOST_IF (an index can be reused),
 * and then, when asked, RTM_DELLINK.  Deprovision's probe (RTM_GETLINK of
 * HOST_IF, then RTM_GETNSID of the namespace's handle, which the job
 * leaves alone meanwhile) runs here too: while the kernel tears a batch of
 * namespaces down it holds RTNL for up to hundreds of ms, and a lookup
 * from the loop would wait as long.  Opening, creating and removing a
 * namespace are the privileged calls' (struct prov_privops,
 * netns/nsops.c), made from here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>

#include "netns/netns.h"
#include "netns/offload.h"
#include "netns/prov_int.h"

enum op_kind {
	OP_DEL_LINK, OP_CHECK_LINK, OP_PROBE, OP_NS_OPEN, OP_NS_REMOVE
};

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
	unsigned flags;		/* OP_NS_OPEN: NSOPS_* */
	char ns[NAME_MAX + 1];	/* OP_NS_OPEN, OP_NS_REMOVE */
	int probe_nsfd;		/* OP_PROBE: the job's, untouched meanwhile */
	/* out */
	bool exists;		/* OP_CHECK_LINK: index is still ifname */
	struct prov_link link;	/* OP_PROBE: HOST_IF when exists */
	int32_t nsid;		/* OP_PROBE: -1 when none */
	bool bad_reply;		/* OP_PROBE: a reply that does not parse */
	int err;
	int nsfd;		/* OP_NS_OPEN: the handle */
	struct netns_id id;
	const char *what;	/* the call that failed */
	char extack[128];
	char why[PROV_MSG_MAX];	/* OP_NS_*: the privileged call's */
};

/* --- on the worker */

static int worker_sock(struct prov *prov, unsigned timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int fd, fl;

	if (prov->wsock >= 0)
		return 0;
	fd = prov->ops.nl_socket(prov->ops.ctx, true, -1, &prov->wportid);
	if (fd < 0)
		return fd;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	prov->wsock = fd;
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

/* Send nlh (its type and extra header filled in) on the worker's socket
 * and wait for its ACK, passing answers to cb; op->err is the ACK's error,
 * or -errno, -ETIMEDOUT.  op->what names the request. */
static void work_req(struct prov_work_op *op, struct nlmsghdr *nlh,
		     char *buf, size_t size, mnl_cb_t cb)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = ack_cb_error };
	struct prov *prov = op->prov;
	const char *what = op->what;
	uint32_t seq, portid;
	ssize_t n;
	int r;

	op->what = "netlink socket";
	op->err = worker_sock(prov, op->timeout_ms);
	if (op->err)
		return;
	op->what = what;
	op->extack[0] = '\0';
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq = ++prov->wseq;
	if (send(prov->wsock, nlh, nlh->nlmsg_len, MSG_NOSIGNAL) < 0) {
		op->err = -errno;
		return;
	}
	portid = prov->wportid;
	op->err = -EPROTO;
	for (;;) {
		n = recv(prov->wsock, buf, size, 0);
		if (n <= 0) {
			op->err = n == 0 ? -ECONNRESET :
				  errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		r = mnl_cb_run2(buf, (size_t)n, seq, portid, cb, op, ctl,
				NLMSG_MIN_TYPE);
		if (r == MNL_CB_STOP)
			break;		/* op->err is the ACK's */
		if (r < 0 && errno != ESRCH && errno != EPROTO) {
			op->err = -errno;
			break;
		}
		/* another sequence number: a late answer, read on */
	}
	if (op->err == -ETIMEDOUT || op->err == -ECONNRESET) {
		/* the answer may still come: another socket next time */
		close(prov->wsock);
		prov->wsock = -1;
	}
}

union work_buf {
	struct nlmsghdr align;
	char b[8192];		/* MNL_SOCKET_BUFFER_SIZE at most */
};

/* A link request (RTM_GETLINK or RTM_DELLINK, by op->index or else by
 * op->ifname), answers to cb. */
static void work_link_req(struct prov_work_op *op, uint16_t type, mnl_cb_t cb)
{
	union work_buf buf;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	nlh = mnl_nlmsg_put_header(buf.b);
	nlh->nlmsg_type = type;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	/* a deletion by name only: the index may be another link's now */
	if (op->index && type == RTM_GETLINK)
		ifi->ifi_index = (int)op->index;
	else
		mnl_attr_put_strz(nlh, IFLA_IFNAME, op->ifname);
	if (type == RTM_GETLINK)
		mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	op->what = type == RTM_GETLINK ? "RTM_GETLINK" : "RTM_DELLINK";
	work_req(op, nlh, buf.b, sizeof(buf.b), cb);
}

/* The answer to RTM_GETLINK by name: HOST_IF as it is. */
static int probe_link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct prov_work_op *op = data;
	struct prov_link li;
	int r = prov_parse_link(nlh, &li);

	if (r < 0)
		op->bad_reply = true;	/* the ACK still comes: read on */
	if (r == 0 && !strcmp(li.name, op->ifname)) {
		op->link = li;
		op->exists = true;
	}
	return MNL_CB_OK;
}

static int probe_nsid_cb(const struct nlmsghdr *nlh, void *data)
{
	struct prov_work_op *op = data;

	if (prov_parse_nsid(nlh, &op->nsid) < 0)
		op->bad_reply = true;
	return MNL_CB_OK;
}

/* HOST_IF by name, then the nsid of the namespace (after the GET, which
 * allocates one for a veth peer's namespace). */
static void work_probe(struct prov_work_op *op)
{
	union work_buf buf;
	struct nlmsghdr *nlh;
	struct rtgenmsg *g;

	op->index = 0;
	work_link_req(op, RTM_GETLINK, probe_link_cb);
	if (op->err == -ENODEV)
		op->err = 0;		/* no such link */
	if (!op->err && op->bad_reply)
		op->err = -EPROTO;
	if (op->err)
		return;
	nlh = mnl_nlmsg_put_header(buf.b);
	nlh->nlmsg_type = RTM_GETNSID;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)op->probe_nsfd);
	op->what = "RTM_GETNSID";
	work_req(op, nlh, buf.b, sizeof(buf.b), probe_nsid_cb);
	if (!op->err && op->bad_reply)
		op->err = -EPROTO;
}

static void work_del_link(struct prov_work_op *op)
{
	work_link_req(op, RTM_DELLINK, NULL);
}

/* Is op->index still op->ifname?  Then delete it if asked. */
static void work_check_link(struct prov_work_op *op)
{
	work_link_req(op, RTM_GETLINK, link_cb);
	if (op->err == -ENODEV)
		op->err = 0;		/* gone */
	if (op->err || !op->exists || !op->del)
		return;
	work_link_req(op, RTM_DELLINK, NULL);
	if (op->err == -ENODEV) {	/* went meanwhile */
		op->err = 0;
		op->exists = false;
	}
	if (!op->err)
		op->exists = false;	/* deleted */
}

static void work_ns_open(struct prov_work_op *op)
{
	struct prov *prov = op->prov;

	op->what = "namespace";
	op->err = prov->ops.ns_open(prov->ops.ctx, op->ns, op->flags,
				    &op->nsfd, &op->id, op->why,
				    sizeof(op->why));
}

static void work_ns_remove(struct prov_work_op *op)
{
	struct prov *prov = op->prov;

	op->what = "remove";
	op->err = prov->ops.ns_remove(prov->ops.ctx, op->ns, op->why,
				      sizeof(op->why));
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
	case OP_PROBE:
		work_probe(op);
		break;
	case OP_NS_OPEN:
		work_ns_open(op);
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
		if (op->kind == OP_NS_OPEN && op->err >= 0)
			op->prov->ops.ns_close(op->prov->ops.ctx, false,
					       op->nsfd);
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
	case OP_PROBE:
		if (op->err) {
			prov_job_error(j, op->err, "look up host interface %s and "
				       "the nsid of %s: %s: %s%s%s%s",
				       j->spec.host_if, j->spec.ns, op->what,
				       strerror(-op->err),
				       op->extack[0] ? " (kernel: " : "",
				       op->extack, op->extack[0] ? ")" : "");
			break;
		}
		j->host = op->link;
		j->host_found = op->exists;
		j->nsid = op->nsid;
		break;
	case OP_NS_OPEN:
		if (op->err == -EAGAIN) {
			j->ns_tries++;
			j->ns_again = true;
			break;
		}
		if (op->err == -ENOENT && j->op == OP_DOWN) {
			j->ns_missing = true;
			break;
		}
		if (op->err < 0) {
			prov_job_error(j, op->err, "%s", op->why[0] ? op->why :
				       strerror(-op->err));
			break;
		}
		j->nsfd = op->nsfd;
		j->ns_id = op->id;
		j->ns_created = op->err == 1;
		break;
	case OP_NS_REMOVE:
		if (op->err)
			prov_job_error(j, op->err, "%s", op->why[0] ? op->why :
				       strerror(-op->err));
		break;
	}
	free(op);
	if (!j->pending)
		prov_job_go(j);
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
	op->probe_nsfd = -1;
	op->nsid = -1;
	op->timeout_ms = j->prov->timeout_ms;
	snprintf(op->path, sizeof(op->path), "%s", j->path);
	snprintf(op->ifname, sizeof(op->ifname), "%s", j->spec.host_if);
	snprintf(op->ns, sizeof(op->ns), "%s", j->spec.ns);
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

void prov_work_probe(struct prov_job *j)
{
	struct prov_work_op *op = op_new(j, OP_PROBE);

	if (op)
		op->probe_nsfd = j->nsfd;
	j->host_found = false;
	j->nsid = -1;
	(void)op_start(j, op, "look up host interface");
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

void prov_work_ns_open(struct prov_job *j, unsigned flags)
{
	struct prov_work_op *op = op_new(j, OP_NS_OPEN);

	if (op)
		op->flags = flags;
	(void)op_start(j, op, "open namespace");
}

void prov_work_ns_remove(struct prov_job *j)
{
	(void)op_start(j, op_new(j, OP_NS_REMOVE), "remove namespace");
}
