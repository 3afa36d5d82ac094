/* SPDX-License-Identifier: MIT */
/* monitor: rtnetlink link events on the host.
 *
 * Only RTM_DELLINK matters to the daemon: the host end of a provisioned
 * veth pair that disappears (an admin's `ip link del`, a tool cleaning up)
 * leaves the namespace without its link.  Multicast delivery is lossy: when
 * the socket's buffer overruns, recv() fails with ENOBUFS and the events
 * lost are unknown, so the caller reconciles everything it owns.
 *
 * To make overruns rare under link churn elsewhere on the host (containers
 * coming and going), the socket joins RTNLGRP_LINK only (no address or
 * route events) and asks for a MONITOR_RCVBUF receive buffer, past the
 * rmem_max sysctl when it may (SO_RCVBUFFORCE, CAP_NET_ADMIN).
 * NETLINK_NO_ENOBUFS is deliberately not set: an overrun must be reported,
 * since the events it lost are unknown.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#include "netns/monitor.h"
#include "netns/nl.h"

#define MONITOR_RCVBUF	(4 << 20)	/* bytes; the kernel doubles it */

struct gone_ctx {
	void (*gone)(void *arg, const char *ifname);
	void *arg;
};

static const struct nl_attr_rule link_rules[] = {
	{ IFLA_IFNAME, MNL_TYPE_NUL_STRING, 0 },
};
static const struct nl_policy link_policy = NL_POLICY(IFLA_MAX, link_rules);

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	struct gone_ctx *g = data;

	if (nlh->nlmsg_type != RTM_DELLINK)
		return MNL_CB_OK;
	if (nl_attr_parse(nlh, sizeof(struct ifinfomsg), &link_policy,
			  tb) < 0 ||
	    !tb[IFLA_IFNAME])
		return MNL_CB_OK;	/* not ours to judge: skip it */
	g->gone(g->arg, mnl_attr_get_str(tb[IFLA_IFNAME]));
	return MNL_CB_OK;
}

int monitor_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };	/* no groups */
	int fd, r, group = RTNLGRP_LINK, rcvbuf = MONITOR_RCVBUF;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	/* past rmem_max with CAP_NET_ADMIN; else as much as rmem_max allows */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				 sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group,
		       sizeof(group)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int monitor_read(int fd, void (*gone)(void *arg, const char *ifname),
		 void *arg)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct gone_ctx g = { gone, arg };

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* seq 0, portid 0: kernel multicast */
		mnl_cb_run(buf, (size_t)n, 0, 0, msg_cb, &g);
	}
}
