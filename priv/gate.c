/* SPDX-License-Identifier: MIT */
/* gate: the rtnetlink requests provisioning may make, and nothing else.
 *
 * Theory of operation
 *
 * Provisioning (netns/prov_*.c) needs, from rtnetlink: to read (links,
 * addresses, routes, nsids), to create a veth whose host end and peer bear
 * names of the templates with the peer placed in a namespace the helper
 * opened, to bring up links (on the host, a veth of its template, named:
 * by index an admin's eth0 would be just as easy to touch), to add
 * addresses of the pools, to add a default route inside a namespace it
 * opened, and to delete a veth of its template by name.  That is the whole
 * list below; every other message type, flag or attribute is refused with
 * a reason.  Names are checked against the templates (gate_name_matches()),
 * addresses against the pools, descriptors of namespaces are the helper's
 * own (the engine writes a handle, this file puts the descriptor).  A
 * datagram holds exactly one request.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "priv/gate.h"

#define WHY(...)	(snprintf(why, whylen, __VA_ARGS__), -EPERM)

/* ---------------------------------------------------------- templates */

static bool user_byte(char c)
{
	return c && c != '/' && c != ' ' && c != ':' && c != '%';
}

static bool match(const char *t, const char *s)
{
	if (!*t)
		return !*s;
	if (t[0] == '%' && t[1] == '%')
		return *s == '%' && match(t + 2, s + 1);
	if (t[0] == '%' && (t[1] == 'u' || t[1] == 'U' || t[1] == 'i')) {
		size_t n = 0;

		/* one or more of the class, the longest first */
		while (t[1] == 'u' ? user_byte(s[n]) :
		       (s[n] >= '0' && s[n] <= '9'))
			n++;
		for (; n > 0; n--)
			if (match(t + 2, s + n))
				return true;
		return false;
	}
	return *t == *s && match(t + 1, s + 1);
}

bool gate_name_matches(const char *tmpl, const char *name)
{
	return match(tmpl, name);
}

/* ---------------------------------------------------------- addresses */

static bool in_v4_pool(const struct prov_pool *p, const void *a)
{
	uint32_t x, base = ntohl(p->v4_base.s_addr);
	uint32_t mask = p->v4_plen ? ~0u << (32 - p->v4_plen) : 0;

	memcpy(&x, a, 4);
	return (ntohl(x) & mask) == (base & mask);
}

static bool in_v6_pool(const struct prov_pool *p, const void *a)
{
	return !memcmp(a, &p->v6_base, 6);	/* a /48 */
}

/* ---------------------------------------------------------- attributes */

/* Whether every attribute of NLH (after HDR bytes) has a type in OK. */
static bool only(const struct nlmsghdr *nlh, size_t hdr, const uint16_t *ok,
		 size_t n, uint16_t *bad)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, hdr) {
		size_t i;

		for (i = 0; i < n && ok[i] != mnl_attr_get_type(a); i++)
			;
		if (i == n) {
			*bad = mnl_attr_get_type(a);
			return false;
		}
	}
	return true;
}

static const struct nlattr *find(const struct nlmsghdr *nlh, size_t hdr,
				 uint16_t type)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, hdr)
		if (mnl_attr_get_type(a) == type)
			return a;
	return NULL;
}

static const char *str_attr(const struct nlattr *a)
{
	return a && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0 ?
	       mnl_attr_get_str(a) : NULL;
}

/* A namespace handle in a u32 attribute: the helper's descriptor put in
 * its place.  0 or -EPERM. */
static int rewrite_fd(struct nlattr *a, gate_fd_fn fd_of, void *arg)
{
	uint32_t h;
	int fd;

	if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return -EPERM;
	h = mnl_attr_get_u32(a);
	fd = fd_of(arg, h);
	if (fd < 0)
		return -EPERM;
	h = (uint32_t)fd;
	memcpy(mnl_attr_get_payload(a), &h, sizeof(h));
	return 0;
}

/* ---------------------------------------------------------- messages */

static int check_link_new(const struct prov_pool *p, enum gate_sock kind,
			  struct nlmsghdr *nlh, gate_fd_fn fd_of, void *arg,
			  char *why, size_t whylen)
{
	static const uint16_t create_ok[] = { IFLA_IFNAME, IFLA_LINKINFO };
	static const uint16_t info_ok[] = { IFLA_INFO_KIND, IFLA_INFO_DATA };
	static const uint16_t peer_ok[] = { IFLA_IFNAME, IFLA_NET_NS_FD };
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *name = find(nlh, sizeof(*ifi), IFLA_IFNAME);
	struct nlattr *info = (struct nlattr *)find(nlh, sizeof(*ifi),
						    IFLA_LINKINFO);
	const char *n = str_attr(name), *kindname = NULL;
	struct nlattr *a, *data = NULL, *peer = NULL, *nsfd = NULL;
	const char *peer_name = NULL;
	uint16_t bad;

	if (ifi->ifi_change & ~(unsigned)IFF_UP)
		return WHY("RTM_NEWLINK: changes flags other than up");
	if (!info) {
		/* a link brought up */
		if (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL |
					NLM_F_REPLACE | NLM_F_APPEND))
			return WHY("RTM_NEWLINK: create flags without a kind");
		if (!only(nlh, sizeof(*ifi), (const uint16_t[]){ IFLA_IFNAME },
			  1, &bad))
			return WHY("RTM_NEWLINK: attribute %u not allowed", bad);
		if (kind == GATE_HOST) {
			if (ifi->ifi_index)
				return WHY("RTM_NEWLINK on the host: by index "
					   "(a link of the host's may have it): "
					   "name the link");
			if (!n || !gate_name_matches(p->host_tmpl, n))
				return WHY("RTM_NEWLINK on the host: %s is not "
					   "a veth of the template %s",
					   n ? n : "(no name)", p->host_tmpl);
			return 0;
		}
		if (ifi->ifi_index && name)
			return WHY("RTM_NEWLINK: index and name (a rename)");
		if (!ifi->ifi_index && !n)
			return WHY("RTM_NEWLINK: neither index nor name");
		return 0;
	}
	/* a veth pair created */
	if (kind != GATE_HOST)
		return WHY("RTM_NEWLINK: a link created inside a namespace");
	if ((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) !=
	    (NLM_F_CREATE | NLM_F_EXCL) ||
	    (nlh->nlmsg_flags & (NLM_F_REPLACE | NLM_F_APPEND)))
		return WHY("RTM_NEWLINK: a creation must be NLM_F_CREATE | "
			   "NLM_F_EXCL");
	if (ifi->ifi_index)
		return WHY("RTM_NEWLINK: a creation with an index");
	if (!only(nlh, sizeof(*ifi), create_ok, 2, &bad))
		return WHY("RTM_NEWLINK: attribute %u not allowed", bad);
	if (!n || !gate_name_matches(p->host_tmpl, n))
		return WHY("RTM_NEWLINK: %s is not a name of the template %s",
			   n ? n : "(no name)", p->host_tmpl);
	mnl_attr_for_each_nested(a, info) {
		size_t i;

		for (i = 0; i < 2 && info_ok[i] != mnl_attr_get_type(a); i++)
			;
		if (i == 2)
			return WHY("RTM_NEWLINK: link info %u not allowed",
				   mnl_attr_get_type(a));
		if (mnl_attr_get_type(a) == IFLA_INFO_KIND)
			kindname = str_attr(a);
		else
			data = a;
	}
	if (!kindname || strcmp(kindname, "veth"))
		return WHY("RTM_NEWLINK: kind %s, not veth",
			   kindname ? kindname : "(none)");
	if (data)
		mnl_attr_for_each_nested(a, data) {
			if (mnl_attr_get_type(a) != VETH_INFO_PEER)
				return WHY("RTM_NEWLINK: veth data %u not "
					   "allowed", mnl_attr_get_type(a));
			peer = a;
		}
	if (!peer || mnl_attr_get_payload_len(peer) < sizeof(struct ifinfomsg))
		return WHY("RTM_NEWLINK: a veth without its peer");
	/* the peer: an ifinfomsg, then its attributes */
	{
		const struct ifinfomsg *pi = mnl_attr_get_payload(peer);
		char *start = (char *)pi + MNL_ALIGN(sizeof(*pi));
		char *end = (char *)mnl_attr_get_payload(peer) +
			    mnl_attr_get_payload_len(peer);

		if (pi->ifi_index || pi->ifi_change || pi->ifi_flags)
			return WHY("RTM_NEWLINK: the peer with an index or "
				   "flags");
		for (a = (struct nlattr *)start;
		     mnl_attr_ok(a, (int)(end - (char *)a));
		     a = mnl_attr_next(a)) {
			size_t i;

			for (i = 0; i < 2 && peer_ok[i] != mnl_attr_get_type(a);
			     i++)
				;
			if (i == 2)
				return WHY("RTM_NEWLINK: peer attribute %u not "
					   "allowed", mnl_attr_get_type(a));
			if (mnl_attr_get_type(a) == IFLA_IFNAME)
				peer_name = str_attr(a);
			else
				nsfd = a;
		}
	}
	if (!peer_name || !gate_name_matches(p->peer_tmpl, peer_name))
		return WHY("RTM_NEWLINK: peer %s is not a name of the template "
			   "%s", peer_name ? peer_name : "(no name)",
			   p->peer_tmpl);
	if (!nsfd || rewrite_fd(nsfd, fd_of, arg) < 0)
		return WHY("RTM_NEWLINK: the peer not in a namespace opened "
			   "for provisioning");
	return 0;
}

static int check_link_del(const struct prov_pool *p, enum gate_sock kind,
			  struct nlmsghdr *nlh, char *why, size_t whylen)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const char *n = str_attr(find(nlh, sizeof(*ifi), IFLA_IFNAME));
	uint16_t bad;

	if (kind != GATE_HOST)
		return WHY("RTM_DELLINK inside a namespace");
	if (ifi->ifi_index)
		return WHY("RTM_DELLINK by index (a link of the host's may "
			   "have it): name the link");
	if (!only(nlh, sizeof(*ifi), (const uint16_t[]){ IFLA_IFNAME }, 1,
		  &bad))
		return WHY("RTM_DELLINK: attribute %u not allowed", bad);
	if (!n || !gate_name_matches(p->host_tmpl, n))
		return WHY("RTM_DELLINK: %s is not a veth of the template %s",
			   n ? n : "(no name)", p->host_tmpl);
	return 0;
}

static int check_addr_new(const struct prov_pool *p, struct nlmsghdr *nlh,
			  char *why, size_t whylen)
{
	static const uint16_t ok[] = { IFA_LOCAL, IFA_ADDRESS, IFA_FLAGS };
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	size_t alen = ifa->ifa_family == AF_INET ? 4 : 16;
	char txt[INET6_ADDRSTRLEN];
	uint16_t bad;
	bool any = false;

	if (nlh->nlmsg_flags & (NLM_F_REPLACE | NLM_F_APPEND))
		return WHY("RTM_NEWADDR: replace or append");
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return WHY("RTM_NEWADDR: family %u", ifa->ifa_family);
	if (ifa->ifa_prefixlen != (ifa->ifa_family == AF_INET ? 30 : 64))
		return WHY("RTM_NEWADDR: prefix length %u",
			   ifa->ifa_prefixlen);
	if (!only(nlh, sizeof(*ifa), ok, 3, &bad))
		return WHY("RTM_NEWADDR: attribute %u not allowed", bad);
	mnl_attr_for_each(a, nlh, sizeof(*ifa)) {
		if (mnl_attr_get_type(a) == IFA_FLAGS)
			continue;
		if (mnl_attr_get_payload_len(a) != alen)
			return WHY("RTM_NEWADDR: an address of %u bytes",
				   mnl_attr_get_payload_len(a));
		if (ifa->ifa_family == AF_INET ?
		    !in_v4_pool(p, mnl_attr_get_payload(a)) :
		    !in_v6_pool(p, mnl_attr_get_payload(a))) {
			inet_ntop(ifa->ifa_family, mnl_attr_get_payload(a),
				  txt, sizeof(txt));
			return WHY("RTM_NEWADDR: %s is outside the pool", txt);
		}
		any = true;
	}
	if (!any)
		return WHY("RTM_NEWADDR: no address");
	return 0;
}

static int check_route_new(const struct prov_pool *p, enum gate_sock kind,
			   struct nlmsghdr *nlh, char *why, size_t whylen)
{
	static const uint16_t ok[] = { RTA_GATEWAY, RTA_OIF };
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *gw = find(nlh, sizeof(*rtm), RTA_GATEWAY);
	size_t alen = rtm->rtm_family == AF_INET ? 4 : 16;
	uint16_t bad;

	if (kind != GATE_NS)
		return WHY("RTM_NEWROUTE on the host (only a default route "
			   "inside a namespace opened for provisioning)");
	if (nlh->nlmsg_flags & (NLM_F_REPLACE | NLM_F_APPEND))
		return WHY("RTM_NEWROUTE: replace or append");
	if ((rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) ||
	    rtm->rtm_dst_len || rtm->rtm_src_len ||
	    rtm->rtm_table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST)
		return WHY("RTM_NEWROUTE: not a default route of the main "
			   "table");
	if (!only(nlh, sizeof(*rtm), ok, 2, &bad))
		return WHY("RTM_NEWROUTE: attribute %u not allowed", bad);
	if (!gw || mnl_attr_get_payload_len(gw) != alen ||
	    (rtm->rtm_family == AF_INET ?
	     !in_v4_pool(p, mnl_attr_get_payload(gw)) :
	     !in_v6_pool(p, mnl_attr_get_payload(gw))))
		return WHY("RTM_NEWROUTE: the gateway is not in the pool");
	return 0;
}

static int check_get(struct nlmsghdr *nlh, size_t hdr, const uint16_t *ok,
		     size_t n, char *why, size_t whylen)
{
	uint16_t bad;

	if (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_REPLACE |
				NLM_F_APPEND) & ~NLM_F_DUMP)
		return WHY("a GET with create flags");
	if (nlh->nlmsg_len < NLMSG_LENGTH(hdr))
		return WHY("a GET shorter than its header");
	if (!only(nlh, hdr, ok, n, &bad))
		return WHY("%s: attribute %u not allowed",
			   nlh->nlmsg_type == RTM_GETLINK ? "RTM_GETLINK" :
			   nlh->nlmsg_type == RTM_GETADDR ? "RTM_GETADDR" :
			   "RTM_GETROUTE", bad);
	return 0;
}

int gate_check(const struct prov_pool *p, enum gate_sock kind, void *msg,
	       size_t len, gate_fd_fn fd_of, void *arg, char *why,
	       size_t whylen)
{
	static const uint16_t link_get[] = { IFLA_IFNAME, IFLA_EXT_MASK };
	static const uint16_t addr_get[] = { IFA_ADDRESS, IFA_LOCAL };
	static const uint16_t route_get[] = { RTA_DST, RTA_OIF };
	struct nlmsghdr *nlh = msg;
	size_t hdr;

	/* aligned too: libmnl walks attributes up to the aligned end, and a
	 * last attribute could reach past an unaligned one */
	if (len < sizeof(*nlh) || nlh->nlmsg_len != len ||
	    MNL_ALIGN(len) != len)
		return WHY("not one whole netlink message");
	if (!(nlh->nlmsg_flags & NLM_F_REQUEST))
		return WHY("not a request");
	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK: case RTM_DELLINK: case RTM_GETLINK:
		hdr = sizeof(struct ifinfomsg);
		break;
	case RTM_NEWADDR: case RTM_GETADDR:
		hdr = sizeof(struct ifaddrmsg);
		break;
	case RTM_NEWROUTE: case RTM_GETROUTE:
		hdr = sizeof(struct rtmsg);
		break;
	case RTM_GETNSID:
		hdr = sizeof(struct rtgenmsg);
		break;
	default:
		return WHY("message type %u is not one provisioning sends",
			   nlh->nlmsg_type);
	}
	if (nlh->nlmsg_len < NLMSG_LENGTH(hdr))
		return WHY("shorter than its header");
	/* every attribute whole: mnl_attr_for_each stops at a broken one,
	 * which would hide what follows it from the checks */
	{
		const struct nlattr *a;
		size_t seen = MNL_ALIGN(hdr) + MNL_NLMSG_HDRLEN;

		mnl_attr_for_each(a, nlh, hdr)
			seen += MNL_ALIGN(a->nla_len);
		if (seen != MNL_ALIGN(nlh->nlmsg_len))
			return WHY("attributes that do not add up");
	}
	if ((nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP &&
	    nlh->nlmsg_type != RTM_GETLINK && nlh->nlmsg_type != RTM_GETADDR &&
	    nlh->nlmsg_type != RTM_GETROUTE)
		return WHY("a dump of message type %u", nlh->nlmsg_type);
	switch (nlh->nlmsg_type) {
	case RTM_GETLINK:
		return check_get(nlh, hdr, link_get, 2, why, whylen);
	case RTM_GETADDR:
		return check_get(nlh, hdr, addr_get, 2, why, whylen);
	case RTM_GETROUTE:
		return check_get(nlh, hdr, route_get, 2, why, whylen);
	case RTM_GETNSID: {
		struct nlattr *a;
		uint16_t bad;

		if (!only(nlh, hdr, (const uint16_t[]){ NETNSA_FD }, 1, &bad))
			return WHY("RTM_GETNSID: attribute %u not allowed", bad);
		a = (struct nlattr *)find(nlh, hdr, NETNSA_FD);
		if (!a || rewrite_fd(a, fd_of, arg) < 0)
			return WHY("RTM_GETNSID: not a namespace opened for "
				   "provisioning");
		return 0;
	}
	case RTM_NEWLINK:
		return check_link_new(p, kind, nlh, fd_of, arg, why, whylen);
	case RTM_DELLINK:
		return check_link_del(p, kind, nlh, why, whylen);
	case RTM_NEWADDR:
		return check_addr_new(p, nlh, why, whylen);
	case RTM_NEWROUTE:
		return check_route_new(p, kind, nlh, why, whylen);
	}
	return WHY("message type %u", nlh->nlmsg_type);
}
