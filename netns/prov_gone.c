/* SPDX-License-Identifier: MIT */
/* prov_gone: deprovision - seeing the kernel take a veth with its namespace.
 *
 * Theory of operation
 *
 * Deleting a veth with RTM_DELLINK costs RCU grace periods inside sendmsg()
 * (20-30 ms each, one deletion at a time, RTNL held for part of it, so any
 * other netlink request waits too).  A namespace that dies takes its
 * devices with it, and the kernel tears dying namespaces down in batches
 * (cleanup_net: every namespace queued meanwhile shares the same grace
 * periods), and a veth whose one end goes takes the other.  So when the
 * host end is ours (its peer is in the namespace being removed), the job
 * drops its own reference to the namespace, removes the file (unmount and
 * unlink: the last reference, unless something else holds it) and lets the
 * kernel delete both ends.  This file watches that happen.
 *
 * One NETLINK_ROUTE socket, open only while some job is watched, joins
 * RTNLGRP_LINK and RTNLGRP_NSID on the host.  It is joined before the file
 * is removed, so no event of ours can be missed but by an overrun:
 *
 *   RTM_DELNSID with our nsid   the namespace is being torn down (the host's
 *                               nsid of it goes at the start of cleanup_net):
 *                               its veth will go, wait for it patiently;
 *   RTM_DELLINK with our index  the host end is gone: the job is done.
 *
 * Either is also a sign that the kernel is making progress, which pushes
 * back every watched job's deadline (prov_plan.c: a big batch may take
 * seconds before its first link goes).  A job that sees neither in time
 * (something keeps its namespace alive: a process inside, a socket) deletes
 * the host end explicitly after all, as before.  Reading multicast takes no
 * lock in the kernel: the loop never waits here.
 *
 * Overrun (ENOBUFS): what was lost is unknown; every watched job is told to
 * look (RTM_GETLINK by index on the worker) and goes on waiting if its link
 * is still there.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>

#include "netns/prov_int.h"

#define GONE_RCVBUF	(4 << 20)	/* bytes; the kernel doubles it */

static const struct nl_attr_rule nsid_rules[] = {
	{ NETNSA_NSID, MNL_TYPE_U32, 0 },
};
static const struct nl_policy nsid_policy = NL_POLICY(NETNSA_MAX, nsid_rules);

uint64_t prov_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void link_gone(struct prov *prov, uint32_t index)
{
	struct prov_job *j, *next;

	for (j = TAILQ_FIRST(&prov->watched); j; j = next) {
		next = TAILQ_NEXT(j, gq);
		if (j->host.index != index || j->gone)
			continue;
		j->gone = true;
		prov->gone_progress = prov_now_ms();
		if (j->step == S_DGONE && j->sleeping)
			prov_job_go(j);	/* may finish it: next is kept */
	}
}

static void nsid_gone(struct prov *prov, int32_t nsid)
{
	struct prov_job *j;

	TAILQ_FOREACH(j, &prov->watched, gq) {
		if (j->nsid == nsid && !j->dying) {
			j->dying = true;
			prov->gone_progress = prov_now_ms();
		}
	}
}

static int gone_msg(const struct nlmsghdr *nlh, void *data)
{
	struct prov *prov = data;
	const struct nlattr *tb[NETNSA_MAX + 1];
	const struct ifinfomsg *ifi;

	switch (nlh->nlmsg_type) {
	case RTM_DELLINK:
		if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
			break;
		ifi = mnl_nlmsg_get_payload(nlh);
		if (ifi->ifi_index > 0)
			link_gone(prov, (uint32_t)ifi->ifi_index);
		break;
	case RTM_DELNSID:
		if (nl_attr_parse(nlh, sizeof(struct rtgenmsg), &nsid_policy,
				  tb) == 0 && tb[NETNSA_NSID])
			nsid_gone(prov,
				  (int32_t)mnl_attr_get_u32(tb[NETNSA_NSID]));
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

/* Events were lost: every watched job looks for itself. */
static void gone_overrun(struct prov *prov)
{
	struct prov_job *j, *next;

	for (j = TAILQ_FIRST(&prov->watched); j; j = next) {
		next = TAILQ_NEXT(j, gq);
		j->recheck = true;
		if (j->step == S_DGONE && j->sleeping)
			prov_job_go(j);
	}
}

static void gone_read_cb(evutil_socket_t fd, short what, void *arg)
{
	union {
		struct nlmsghdr align;
		char b[MNL_SOCKET_BUFFER_SIZE];
	} buf;
	struct prov *prov = arg;
	ssize_t n;
	int i;

	/* a bounded number of reads per turn: the loop serves others too */
	for (i = 0; i < 64 && prov->gone_fd >= 0; i++) {
		n = recv(prov->gone_fd, buf.b, sizeof(buf.b), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS)
				gone_overrun(prov);
			return;		/* EAGAIN: all read */
		}
		/* seq 0, portid 0: kernel multicast */
		(void)mnl_cb_run(buf.b, (size_t)n, 0, 0, gone_msg, prov);
	}
}

static int gone_open(struct prov *prov)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd, err, rcvbuf = GONE_RCVBUF;
	static const int groups[] = { RTNLGRP_LINK, RTNLGRP_NSID };
	size_t i;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				 sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
			       &groups[i], sizeof(groups[i])) < 0)
			goto fail;
	prov->gone_ev = event_new(prov->base, fd, EV_READ | EV_PERSIST,
				  gone_read_cb, prov);
	if (!prov->gone_ev) {
		errno = ENOMEM;
		goto fail;
	}
	if (event_add(prov->gone_ev, NULL) < 0) {
		event_free(prov->gone_ev);
		prov->gone_ev = NULL;
		errno = ENOMEM;
		goto fail;
	}
	prov->gone_fd = fd;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

int prov_gone_watch(struct prov_job *j)
{
	struct prov *prov = j->prov;
	int err;

	if (j->watched)
		return 0;
	if (prov->gone_fd < 0) {
		err = gone_open(prov);
		if (err)
			return err;
	}
	j->watched = true;
	j->gone = j->dying = j->recheck = false;
	TAILQ_INSERT_TAIL(&prov->watched, j, gq);
	return 0;
}

void prov_gone_unwatch(struct prov_job *j)
{
	struct prov *prov = j->prov;

	if (!j->watched)
		return;
	j->watched = false;
	TAILQ_REMOVE(&prov->watched, j, gq);
	if (TAILQ_EMPTY(&prov->watched) && prov->gone_fd >= 0) {
		event_free(prov->gone_ev);
		prov->gone_ev = NULL;
		close(prov->gone_fd);
		prov->gone_fd = -1;
	}
}
