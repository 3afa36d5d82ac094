/* SPDX-License-Identifier: MIT */
/* prov_read: reading kernel state - the answers of a job's requests.
 *
 * Theory of operation
 *
 * Each reply message of a request lands in one prov_msg_* callback, which
 * parses it (parse_link, parse_addr, parse_route: every attribute validated
 * before use) and records what it means for the job: the host end, the
 * namespace's links, where each of the four addresses is, the default
 * routes.  A callback called with nlh == NULL is told that a dump restarts
 * (NLM_F_DUMP_INTR) and forgets what that dump said.  Nothing here sends or
 * decides; prov_plan.c reads the result once every request of a step is in.
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

#include "netns/prov_int.h"

/* What each kind of reply may carry that we read. */
static const struct nl_attr_rule link_rules[] = {
	{ IFLA_IFNAME, MNL_TYPE_NUL_STRING, 0 },
	{ IFLA_LINK, MNL_TYPE_U32, 0 },
	{ IFLA_LINK_NETNSID, MNL_TYPE_U32, 0 },
	{ IFLA_LINKINFO, MNL_TYPE_NESTED, 0 },
};
static const struct nl_policy link_policy = NL_POLICY(IFLA_MAX, link_rules);

static const struct nl_attr_rule linkinfo_rules[] = {
	{ IFLA_INFO_KIND, MNL_TYPE_NUL_STRING, 0 },
};
static const struct nl_policy linkinfo_policy =
	NL_POLICY(IFLA_INFO_MAX, linkinfo_rules);

/* Lengths depend on the family: checked once it is known. */
static const struct nl_attr_rule addr_rules[] = {
	{ IFA_ADDRESS, MNL_TYPE_BINARY, 0 },
	{ IFA_LOCAL, MNL_TYPE_BINARY, 0 },
};
static const struct nl_policy addr_policy = NL_POLICY(IFA_MAX, addr_rules);

static const struct nl_attr_rule route_rules[] = {
	{ RTA_TABLE, MNL_TYPE_U32, 0 },
	{ RTA_OIF, MNL_TYPE_U32, 0 },
	{ RTA_GATEWAY, MNL_TYPE_BINARY, 0 },
};
static const struct nl_policy route_policy = NL_POLICY(RTA_MAX, route_rules);

static const struct nl_attr_rule nsid_rules[] = {
	{ NETNSA_NSID, MNL_TYPE_U32, 0 },
};
static const struct nl_policy nsid_policy = NL_POLICY(NETNSA_MAX, nsid_rules);

/* RTM_NEWLINK -> li.  Returns 0, 1 (not a link message) or -EPROTO.
 * Pure: the worker uses it too (prov_parse_link). */
static int parse_link(const struct nlmsghdr *nlh, struct prov_link *li)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	const struct nlattr *info[IFLA_INFO_MAX + 1] = { 0 };
	const struct ifinfomsg *ifi;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 1;
	if (nl_attr_parse(nlh, sizeof(*ifi), &link_policy, tb) < 0)
		return -EPROTO;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (!tb[IFLA_IFNAME] || ifi->ifi_index <= 0)
		return -EPROTO;
	if (tb[IFLA_LINKINFO] &&
	    nl_attr_parse_nested(tb[IFLA_LINKINFO], &linkinfo_policy,
				 info) < 0)
		return -EPROTO;
	memset(li, 0, sizeof(*li));
	li->index = (uint32_t)ifi->ifi_index;
	li->flags = ifi->ifi_flags;
	snprintf(li->name, sizeof(li->name), "%s",
		 mnl_attr_get_str(tb[IFLA_IFNAME]));
	if (tb[IFLA_LINK]) {
		li->has_peer = true;
		li->peer = mnl_attr_get_u32(tb[IFLA_LINK]);
	}
	if (tb[IFLA_LINK_NETNSID]) {
		li->has_nsid = true;
		li->nsid = (int32_t)mnl_attr_get_u32(tb[IFLA_LINK_NETNSID]);
	}
	if (info[IFLA_INFO_KIND]) {
		snprintf(li->kind, sizeof(li->kind), "%s",
			 mnl_attr_get_str(info[IFLA_INFO_KIND]));
		li->veth = !strcmp(li->kind, "veth");
	}
	return 0;
}

struct prov_addr {
	int family;
	unsigned plen;
	uint32_t index;
	unsigned char addr[16];
};

/* RTM_NEWADDR -> ad.  Returns 0, 1 (not IPv4/IPv6) or -EPROTO. */
static int parse_addr(const struct nlmsghdr *nlh, struct prov_addr *ad)
{
	const struct nlattr *tb[IFA_MAX + 1], *a;
	const struct ifaddrmsg *ifa;
	size_t alen;

	if (nlh->nlmsg_type != RTM_NEWADDR)
		return 1;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
		return -EPROTO;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return 1;
	if (nl_attr_parse(nlh, sizeof(*ifa), &addr_policy, tb) < 0)
		return -EPROTO;
	alen = ifa->ifa_family == AF_INET ? 4 : 16;
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_validate2(a, MNL_TYPE_BINARY, alen) < 0)
		return -EPROTO;
	ad->family = ifa->ifa_family;
	ad->plen = ifa->ifa_prefixlen;
	ad->index = ifa->ifa_index;
	memcpy(ad->addr, mnl_attr_get_payload(a), alen);
	return 0;
}

struct prov_route {
	int family;
	unsigned dst_len;
	uint32_t table, oif;
	unsigned type;
	bool has_gw;
	unsigned char gw[16];
};

/* RTM_NEWROUTE -> rt.  Returns 0, 1 (not IPv4/IPv6) or -EPROTO. */
static int parse_route(const struct nlmsghdr *nlh, struct prov_route *rt)
{
	const struct nlattr *tb[RTA_MAX + 1];
	const struct rtmsg *rtm;
	size_t alen;

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return 1;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return -EPROTO;
	rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6)
		return 1;
	if (nl_attr_parse(nlh, sizeof(*rtm), &route_policy, tb) < 0)
		return -EPROTO;
	alen = rtm->rtm_family == AF_INET ? 4 : 16;
	memset(rt, 0, sizeof(*rt));
	rt->family = rtm->rtm_family;
	rt->dst_len = rtm->rtm_dst_len;
	rt->type = rtm->rtm_type;
	rt->table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE])
				  : rtm->rtm_table;
	rt->oif = tb[RTA_OIF] ? mnl_attr_get_u32(tb[RTA_OIF]) : 0;
	if (tb[RTA_GATEWAY]) {
		if (mnl_attr_validate2(tb[RTA_GATEWAY], MNL_TYPE_BINARY,
				       alen) < 0)
			return -EPROTO;
		rt->has_gw = true;
		memcpy(rt->gw, mnl_attr_get_payload(tb[RTA_GATEWAY]), alen);
	}
	return 0;
}

int prov_parse_link(const struct nlmsghdr *nlh, struct prov_link *li)
{
	return parse_link(nlh, li);
}

int prov_parse_nsid(const struct nlmsghdr *nlh, int32_t *nsid)
{
	const struct nlattr *tb[NETNSA_MAX + 1];

	if (nlh->nlmsg_type != RTM_NEWNSID)
		return 1;
	if (nl_attr_parse(nlh, sizeof(struct rtgenmsg), &nsid_policy, tb) < 0)
		return -EPROTO;
	if (tb[NETNSA_NSID])
		*nsid = (int32_t)mnl_attr_get_u32(tb[NETNSA_NSID]);
	return 0;
}

/* Record the first error of a job: err (-errno) and its message. */
void prov_job_error(struct prov_job *j, int err, const char *fmt, ...)
{
	va_list ap;

	if (j->err)
		return;
	j->err = err < 0 ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
	va_end(ap);
}

const char *prov_ntop(int family, const void *addr, char *buf, size_t n)
{
	if (!inet_ntop(family, addr, buf, (socklen_t)n))
		snprintf(buf, n, "?");
	return buf;
}

struct prov_link *prov_link_by_index(struct prov_job *j, uint32_t idx)
{
	size_t i;

	for (i = 0; i < j->nlinks; i++)
		if (j->links[i].index == idx)
			return &j->links[i];
	return NULL;
}

struct prov_link *prov_link_by_name(struct prov_job *j, const char *n)
{
	size_t i;

	for (i = 0; i < j->nlinks; i++)
		if (!strcmp(j->links[i].name, n))
			return &j->links[i];
	return NULL;
}

int prov_msg_host_link(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_req *q = arg;
	struct prov_link li;
	int r;

	if (!nlh)
		return 0;
	r = parse_link(nlh, &li);
	if (r < 0)
		return r;
	if (r == 0 && !strcmp(li.name, q->job->spec.host_if)) {
		q->job->host = li;
		q->job->host_found = true;
	}
	return 0;
}

int prov_msg_nsid(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_req *q = arg;
	int r;

	if (!nlh)
		return 0;
	r = prov_parse_nsid(nlh, &q->job->nsid);
	return r < 0 ? r : 0;
}

int prov_msg_ns_link(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_job *j = ((struct prov_req *)arg)->job;
	struct prov_link li, *links;
	int r;

	if (!nlh) {
		j->nlinks = 0;
		return 0;
	}
	r = parse_link(nlh, &li);
	if (r)
		return r < 0 ? r : 0;
	if (j->nlinks >= PROV_MAX_LINKS)
		return -E2BIG;
	links = realloc(j->links, (j->nlinks + 1) * sizeof(*links));
	if (!links)
		return -ENOMEM;
	j->links = links;
	j->links[j->nlinks++] = li;
	return 0;
}

/* A dump restarts (NLM_F_DUMP_INTR): forget what it said.  The host's
 * addresses are `here` for host targets, the namespace's for the others. */
static void target_reset(struct prov_job *j, int src)
{
	int i;

	for (i = 0; i < T_MAX; i++) {
		j->t[i].wrong[src] = false;
		if (j->t[i].host_side == (src == SRC_HOST))
			j->t[i].here = false;
	}
}

static void target_wrong(struct prov_target *t, int src, const char *fmt,
			 ...) __attribute__((format(printf, 3, 4)));

static void target_wrong(struct prov_target *t, int src, const char *fmt, ...)
{
	va_list ap;

	if (t->wrong[src])
		return;
	t->wrong[src] = true;
	va_start(ap, fmt);
	vsnprintf(t->where[src], sizeof(t->where[src]), fmt, ap);
	va_end(ap);
}

int prov_msg_ns_addr(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_job *j = ((struct prov_req *)arg)->job;
	struct prov_addr ad;
	struct prov_target *t;
	struct prov_link *l;
	int r, i;

	if (!nlh) {
		target_reset(j, SRC_NS);
		return 0;
	}
	r = parse_addr(nlh, &ad);
	if (r)
		return r < 0 ? r : 0;
	for (i = 0; i < T_MAX; i++) {
		t = &j->t[i];
		if (t->family != ad.family ||
		    memcmp(t->addr, ad.addr, ad.family == AF_INET ? 4 : 16))
			continue;
		if (!t->host_side && ad.index == j->peer->index) {
			if (ad.plen == t->plen)
				t->here = true;
			else
				target_wrong(t, SRC_NS,
					     "has prefix /%u on %s in %s",
					     ad.plen, j->peer->name,
					     j->spec.ns);
			continue;
		}
		l = prov_link_by_index(j, ad.index);
		target_wrong(t, SRC_NS, "is assigned to %s in %s",
			     l ? l->name : "another interface", j->spec.ns);
	}
	return 0;
}

int prov_msg_host_addr(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_job *j = ((struct prov_req *)arg)->job;
	struct prov_addr ad;
	struct prov_target *t;
	int r, i;

	if (!nlh) {
		target_reset(j, SRC_HOST);
		return 0;
	}
	r = parse_addr(nlh, &ad);
	if (r)
		return r < 0 ? r : 0;
	if (ad.index != j->host.index)	/* no strict checking: unfiltered */
		return 0;
	for (i = 0; i < T_MAX; i++) {
		t = &j->t[i];
		if (t->family != ad.family ||
		    memcmp(t->addr, ad.addr, ad.family == AF_INET ? 4 : 16))
			continue;
		if (t->host_side && ad.plen == t->plen)
			t->here = true;
		else if (t->host_side)
			target_wrong(t, SRC_HOST, "has prefix /%u on %s",
				     ad.plen,
				     j->spec.host_if);
		else
			target_wrong(t, SRC_HOST,
				     "is assigned to host interface %s",
				     j->spec.host_if);
	}
	return 0;
}

int prov_msg_ns_route(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_job *j = ((struct prov_req *)arg)->job;
	const struct prov_target *gw;
	struct prov_route rt;
	char buf[INET6_ADDRSTRLEN];
	struct prov_link *l;
	int r, f;

	if (!nlh) {
		memset(j->def_ok, 0, sizeof(j->def_ok));
		memset(j->def_other, 0, sizeof(j->def_other));
		return 0;
	}
	r = parse_route(nlh, &rt);
	if (r)
		return r < 0 ? r : 0;
	if (rt.dst_len || rt.table != RT_TABLE_MAIN)
		return 0;
	f = rt.family == AF_INET ? 0 : 1;
	gw = &j->t[f ? T_H6 : T_H4];
	if (rt.type == RTN_UNICAST && rt.has_gw && rt.oif == j->peer->index &&
	    !memcmp(rt.gw, gw->addr, f ? 16 : 4)) {
		j->def_ok[f] = true;
		return 0;
	}
	if (j->def_other[f])
		return 0;
	j->def_other[f] = true;
	l = prov_link_by_index(j, rt.oif);
	snprintf(j->def_where[f], sizeof(j->def_where[f]), "%s%s dev %s",
		 rt.has_gw ? "via " : "type ",
		 rt.has_gw ? prov_ntop(rt.family, rt.gw, buf, sizeof(buf))
			   : (rt.type == RTN_UNICAST ? "unicast" : "other"),
		 l ? l->name : "?");
	return 0;
}

int prov_msg_route_get(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_req *q = arg;
	const struct rtmsg *rtm;

	if (!nlh || nlh->nlmsg_type != RTM_NEWROUTE)
		return 0;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return -EPROTO;
	rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_type == RTN_LOCAL)
		q->job->t[q->idx].local = true;
	return 0;
}

/* The host's answer to "where is this IPv6 address": not on our link. */
int prov_msg_addr_get(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_req *q = arg;
	struct prov_job *j = q->job;
	struct prov_target *t = &j->t[q->idx];
	struct prov_addr ad;
	int r;

	if (!nlh)
		return 0;
	r = parse_addr(nlh, &ad);
	if (r)
		return r < 0 ? r : 0;
	if (ad.family != t->family || memcmp(ad.addr, t->addr, 16))
		return 0;
	if (!(t->host_side && j->host_found && ad.index == j->host.index))
		t->local = true;
	return 0;
}
