/* SPDX-License-Identifier: MIT */
/* prov_send: the netlink requests of a job's steps.
 *
 * Theory of operation
 *
 * Each prov_send_* builds one request with libmnl in a stack buffer and
 * hands it to nl_request() on the host socket or on the job's socket inside
 * the namespace; the request counts in j->pending until req_done() runs,
 * which maps the answers a kind of request expects (ENODEV for "no such
 * link", unreachable for "not local", ...) to success, records any other
 * error in the job, and advances the job when its step's last request is
 * in.  A request that cannot be sent is recorded as the job's error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "netns/prov_int.h"

static void req_done(int err, const char *extack, void *arg)
{
	struct prov_req *q = arg;
	struct prov_job *j = q->job;

	j->pending--;
	if (j->prov->dying) {
		free(q);
		return;
	}
	switch (q->kind) {
	case R_HOST_GET:
	case R_DEL:
		if (err == -ENODEV)
			err = 0;
		break;
	case R_ROUTE_GET:
		if (err == -ENETUNREACH || err == -EHOSTUNREACH ||
		    err == -ENETDOWN || err == -EACCES)
			err = 0;
		break;
	case R_ADDR_GET:
		if (err == -EADDRNOTAVAIL)
			err = 0;
		break;
	case R_BEST_EFFORT:
		err = 0;
		break;
	default:
		break;
	}
	if (err)
		prov_job_error(j, err, "%s: %s%s%s%s", q->what, strerror(-err),
			  extack ? " (kernel: " : "", extack ? extack : "",
			  extack ? ")" : "");
	free(q);
	if (!j->pending)
		prov_job_go(j);
}

/* ------------------------------------------------------------ requests */

struct prov_buf {
	union {
		struct nlmsghdr align;
		char b[PROV_REQ_BUF];
	} u;
};

static struct nlmsghdr *req_start(struct prov_buf *buf, uint16_t type,
				  uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf->u.b);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	return nlh;
}

struct nl *prov_host_nl(struct prov *prov, int *err)
{
	if (prov->host && !nl_error(prov->host))
		return prov->host;
	nl_free(prov->host);
	prov->host = prov_nl_open(prov, -1, err);
	if (prov->host)
		nl_set_timeout(prov->host, prov->timeout_ms);
	return prov->host;
}

static void job_send(struct prov_job *j, bool on_host,
		     const struct nlmsghdr *nlh, nl_msg_fn msg_cb,
		     enum req_kind kind, int idx, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* Send one request for job j; on failure record it as the job's error. */
static void job_send(struct prov_job *j, bool on_host,
		     const struct nlmsghdr *nlh, nl_msg_fn msg_cb,
		     enum req_kind kind, int idx, const char *fmt, ...)
{
	struct prov_req *q;
	struct nl *nl;
	va_list ap;
	int err = -ENOMEM;

	q = calloc(1, sizeof(*q));
	if (!q)
		goto fail;
	q->job = j;
	q->kind = kind;
	q->idx = idx;
	va_start(ap, fmt);
	vsnprintf(q->what, sizeof(q->what), fmt, ap);
	va_end(ap);
	nl = on_host ? prov_host_nl(j->prov, &err) : j->nsnl;
	if (!nl)
		goto fail;
	err = nl_request(nl, nlh, msg_cb, req_done, q);
	if (err)
		goto fail;
	j->pending++;
	return;
fail:
	prov_job_error(j, err, "%s: %s", q ? q->what : "netlink request",
		  strerror(-err));
	free(q);
}

void prov_send_get_link(struct prov_job *j)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, j->spec.host_if);
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	j->host_found = false;
	job_send(j, true, nlh, prov_msg_host_link, R_HOST_GET, 0,
		 "look up host interface %s", j->spec.host_if);
}

void prov_send_get_nsid(struct prov_job *j)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_GETNSID, 0);
	struct rtgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));

	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)j->nsfd);
	j->nsid = -1;
	job_send(j, true, nlh, prov_msg_nsid, R_NSID, 0, "get the nsid of %s",
		 j->spec.ns);
}

void prov_send_dump(struct prov_job *j, bool on_host, uint16_t type,
		      uint32_t index, nl_msg_fn cb, enum req_kind kind,
		      const char *what)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, type, NLM_F_DUMP);
	struct ifinfomsg *ifi;
	struct ifaddrmsg *ifa;
	struct rtmsg *rtm;

	switch (type) {
	case RTM_GETLINK:
		ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
		ifi->ifi_family = AF_UNSPEC;
		mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
		break;
	case RTM_GETADDR:
		ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
		ifa->ifa_family = AF_UNSPEC;
		ifa->ifa_index = index;		/* filter (strict checking) */
		break;
	default:
		rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		rtm->rtm_family = AF_UNSPEC;
		break;
	}
	job_send(j, on_host, nlh, cb, kind, 0, "%s", what);
}

void prov_send_set_up(struct prov_job *j, bool on_host, uint32_t index,
			const char *name)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	/* on the host by name, never by index: an index may be an admin's
	 * eth0 by now, and the gate lets only our names through */
	if (on_host)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	else
		ifi->ifi_index = (int)index;
	job_send(j, on_host, nlh, NULL, R_PLAIN, 0, "set %s up", name);
}

void prov_send_new_veth(struct prov_job *j)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_NEWLINK,
					 NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	struct nlattr *info, *data, *peer;

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, j->spec.host_if);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* VETH_INFO_PEER holds an ifinfomsg, then the peer's attributes.  No
	 * IFF_UP there: the peer is opened before the pair is linked, and
	 * veth_open() then fails with ENOTCONN.  APPLY brings it up. */
	ifi = mnl_nlmsg_get_payload_tail(nlh);
	nlh->nlmsg_len += MNL_ALIGN(sizeof(*ifi));
	memset(ifi, 0, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, j->spec.ns_if);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)j->nsfd);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	job_send(j, true, nlh, NULL, R_PLAIN, 0, "create veth %s (peer %s)",
		 j->spec.host_if, j->spec.ns_if);
}

void prov_send_add_addr(struct prov_job *j, int ti, uint32_t index,
			  const char *ifname)
{
	const struct prov_target *t = &j->t[ti];
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_NEWADDR,
					 NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	char a[INET6_ADDRSTRLEN];

	ifa->ifa_family = (uint8_t)t->family;
	ifa->ifa_prefixlen = (uint8_t)t->plen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = index;
	if (t->family == AF_INET) {
		mnl_attr_put(nlh, IFA_LOCAL, 4, t->addr);
		mnl_attr_put(nlh, IFA_ADDRESS, 4, t->addr);
	} else {
		ifa->ifa_flags = IFA_F_NODAD;
		mnl_attr_put(nlh, IFA_ADDRESS, 16, t->addr);
		mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
	}
	job_send(j, t->host_side, nlh, NULL, R_PLAIN, 0,
		 "add address %s/%u to %s", prov_ntop(t->family, t->addr, a,
						 sizeof(a)), t->plen, ifname);
}

void prov_send_add_default(struct prov_job *j, int f)
{
	const struct prov_target *gw = &j->t[f ? T_H6 : T_H4];
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_NEWROUTE,
					 NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	char a[INET6_ADDRSTRLEN];

	rtm->rtm_family = (uint8_t)gw->family;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_GATEWAY, f ? 16 : 4, gw->addr);
	mnl_attr_put_u32(nlh, RTA_OIF, j->peer->index);
	job_send(j, false, nlh, NULL, R_PLAIN, 0,
		 "add default route via %s dev %s",
		 prov_ntop(gw->family, gw->addr, a, sizeof(a)), j->spec.ns_if);
}

/* Is target ti assigned on the host (see INSPECT)?  Sets t->local. */
void prov_send_local_check(struct prov_job *j, int ti)
{
	struct prov_target *t = &j->t[ti];
	struct prov_buf buf;
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	struct rtmsg *rtm;
	char a[INET6_ADDRSTRLEN];

	t->local = false;
	prov_ntop(t->family, t->addr, a, sizeof(a));
	if (t->family == AF_INET6) {
		nlh = req_start(&buf, RTM_GETADDR, 0);
		ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
		ifa->ifa_family = AF_INET6;
		mnl_attr_put(nlh, IFA_ADDRESS, 16, t->addr);
		job_send(j, true, nlh, prov_msg_addr_get, R_ADDR_GET, ti,
			 "look up %s on the host", a);
		return;
	}
	nlh = req_start(&buf, RTM_GETROUTE, 0);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	mnl_attr_put(nlh, RTA_DST, 4, t->addr);
	job_send(j, true, nlh, prov_msg_route_get, R_ROUTE_GET, ti,
		 "look up %s on the host", a);
}
