/* SPDX-License-Identifier: MIT */
/* priv_test: the helper's decoder and its gate, alone (no privilege, no
 * kernel): what provisioning sends passes, and what it may not do is
 * refused with a reason. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "netns/pool.h"
#include "priv/gate.h"
#include "priv/proto.h"
#include "t/unit/tap.h"

static struct prov_pool pool;
static char why[256];

static int fd_of(void *arg, uint32_t h)
{
	(void)arg;
	return h == 7 ? 42 : -1;
}

union buf {
	struct nlmsghdr align;
	char b[1024];
};

static struct nlmsghdr *start(union buf *u, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(u->b);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	return nlh;
}

static int check(enum gate_sock kind, struct nlmsghdr *nlh)
{
	why[0] = '\0';
	return gate_check(&pool, kind, nlh, nlh->nlmsg_len, fd_of, NULL, why,
			  sizeof(why));
}

/* A veth pair as prov_send_new_veth() makes it, with HOST, PEER and the
 * namespace handle NS (0: no IFLA_NET_NS_FD). */
static struct nlmsghdr *veth(union buf *u, const char *host, const char *peer,
			     uint32_t ns)
{
	struct nlmsghdr *nlh = start(u, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	struct nlattr *info, *data, *pe;

	ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, host);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	pe = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	ifi = mnl_nlmsg_get_payload_tail(nlh);
	nlh->nlmsg_len += MNL_ALIGN(sizeof(*ifi));
	memset(ifi, 0, sizeof(*ifi));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	if (ns)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, ns);
	mnl_attr_nest_end(nlh, pe);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	return nlh;
}

static struct nlmsghdr *link_msg(union buf *u, uint16_t type, int index,
				 const char *name)
{
	struct nlmsghdr *nlh = start(u, type, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_index = index;
	if (type == RTM_NEWLINK)
		ifi->ifi_flags = ifi->ifi_change = IFF_UP;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nlh;
}

static struct nlmsghdr *addr(union buf *u, const char *a, unsigned plen)
{
	struct nlmsghdr *nlh = start(u, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	unsigned char b[16];
	int fam = strchr(a, ':') ? AF_INET6 : AF_INET;

	inet_pton(fam, a, b);
	ifa->ifa_family = (uint8_t)fam;
	ifa->ifa_prefixlen = (uint8_t)plen;
	ifa->ifa_index = 5;
	mnl_attr_put(nlh, IFA_ADDRESS, fam == AF_INET ? 4 : 16, b);
	return nlh;
}

static struct nlmsghdr *route(union buf *u, const char *gw, unsigned dst_len)
{
	struct nlmsghdr *nlh = start(u, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	unsigned char b[16];

	inet_pton(AF_INET, gw, b);
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (uint8_t)dst_len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_GATEWAY, 4, b);
	mnl_attr_put_u32(nlh, RTA_OIF, 2);
	return nlh;
}

static void test_templates(void)
{
	ok(gate_name_matches("nsr%i", "nsr42"), "nsr%%i matches nsr42");
	ok(!gate_name_matches("nsr%i", "nsr"), "... not nsr");
	ok(!gate_name_matches("nsr%i", "nsr4x"), "... not nsr4x");
	ok(!gate_name_matches("nsr%i", "eth0"), "... not eth0");
	ok(!gate_name_matches("nsr%i", "lo"), "... not lo");
	ok(gate_name_matches("%u", "alice"), "%%u matches alice");
	ok(!gate_name_matches("%u", "a/b"), "... not a/b");
	ok(gate_name_matches("veth_%U_out", "veth_1009_out"),
	   "veth_%%U_out matches veth_1009_out");
	ok(gate_name_matches("%u_ns", "alice_x_ns"), "%%u_ns: backtracks");
	ok(gate_name_matches("a%%b", "a%b"), "%%%% is a percent sign");
	ok(gate_name_matches("veth0", "veth0"), "a fixed name");
	ok(!gate_name_matches("veth0", "veth1"), "... and only it");
}

static void test_gate(void)
{
	union buf u;
	struct nlmsghdr *nlh;

	nlh = veth(&u, "nsr42", "veth0", 7);
	is_int(check(GATE_HOST, nlh), 0, "a veth of the templates passes");
	/* the handle became the helper's descriptor */
	ok(memmem(u.b, nlh->nlmsg_len, (uint32_t[]){ 42 }, 4) != NULL &&
	   memmem(u.b, nlh->nlmsg_len, (uint32_t[]){ 7 }, 4) == NULL,
	   "... its namespace handle replaced by the descriptor");
	is_int(check(GATE_HOST, veth(&u, "eth0", "veth0", 7)), -EPERM,
	       "a link not of the host template: refused");
	diag("%s", why);
	is_int(check(GATE_HOST, veth(&u, "nsr42", "eth1", 7)), -EPERM,
	       "a peer not of its template: refused");
	is_int(check(GATE_HOST, veth(&u, "nsr42", "veth0", 8)), -EPERM,
	       "a peer in a namespace not opened for provisioning: refused");
	is_int(check(GATE_HOST, veth(&u, "nsr42", "veth0", 0)), -EPERM,
	       "a peer left on the host: refused");
	is_int(check(GATE_NS, veth(&u, "nsr42", "veth0", 7)), -EPERM,
	       "a link created inside a namespace: refused");

	is_int(check(GATE_HOST, link_msg(&u, RTM_DELLINK, 0, "nsr42")), 0,
	       "deleting one of its veths by name passes");
	is_int(check(GATE_HOST, link_msg(&u, RTM_DELLINK, 0, "lo")), -EPERM,
	       "deleting the host's lo: refused");
	ok(strstr(why, "not a veth of the template") != NULL,
	   "... saying why (%s)", why);
	is_int(check(GATE_HOST, link_msg(&u, RTM_DELLINK, 0, "eth0")), -EPERM,
	       "deleting the host's uplink: refused");
	is_int(check(GATE_HOST, link_msg(&u, RTM_DELLINK, 2, NULL)), -EPERM,
	       "deleting by index: refused");
	is_int(check(GATE_NS, link_msg(&u, RTM_DELLINK, 0, "nsr42")), -EPERM,
	       "deleting inside a namespace: refused");

	is_int(check(GATE_HOST, link_msg(&u, RTM_NEWLINK, 0, "nsr42")), 0,
	       "bringing up one of its veths by name passes");
	is_int(check(GATE_HOST, link_msg(&u, RTM_NEWLINK, 2, NULL)), -EPERM,
	       "bringing up a host link by index: refused");
	is_int(check(GATE_HOST, link_msg(&u, RTM_NEWLINK, 0, "eth0")), -EPERM,
	       "bringing up (or down) the uplink: refused");
	is_int(check(GATE_NS, link_msg(&u, RTM_NEWLINK, 2, NULL)), 0,
	       "in a namespace, by index: passes");
	is_int(check(GATE_NS, link_msg(&u, RTM_NEWLINK, 2, "evil")), -EPERM,
	       "renaming a link (index and name): refused");
	nlh = link_msg(&u, RTM_NEWLINK, 0, "nsr42");
	((struct ifinfomsg *)mnl_nlmsg_get_payload(nlh))->ifi_change = IFF_NOARP;
	is_int(check(GATE_HOST, nlh), -EPERM, "changing flags but up: refused");

	is_int(check(GATE_HOST, addr(&u, "100.64.9.1", 30)), 0,
	       "an address of the IPv4 pool passes");
	is_int(check(GATE_NS, addr(&u, "fd75:6272:7370:9::2", 64)), 0,
	       "an address of the IPv6 pool passes");
	is_int(check(GATE_HOST, addr(&u, "192.0.2.1", 30)), -EPERM,
	       "an address outside the pool: refused");
	diag("%s", why);
	is_int(check(GATE_HOST, addr(&u, "fd00::1", 64)), -EPERM,
	       "an IPv6 address outside the pool: refused");
	is_int(check(GATE_HOST, addr(&u, "100.64.9.1", 8)), -EPERM,
	       "another prefix length: refused");

	is_int(check(GATE_NS, route(&u, "100.64.9.1", 0)), 0,
	       "a default route via the pool, in a namespace, passes");
	is_int(check(GATE_HOST, route(&u, "100.64.9.1", 0)), -EPERM,
	       "a route on the host: refused");
	is_int(check(GATE_NS, route(&u, "192.0.2.1", 0)), -EPERM,
	       "a gateway outside the pool: refused");
	is_int(check(GATE_NS, route(&u, "100.64.9.1", 24)), -EPERM,
	       "a route that is not the default one: refused");

	nlh = start(&u, RTM_GETNSID, 0);
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtgenmsg));
	mnl_attr_put_u32(nlh, NETNSA_FD, 7);
	is_int(check(GATE_HOST, nlh), 0, "the nsid of a handle passes");
	nlh = start(&u, RTM_GETNSID, 0);
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtgenmsg));
	mnl_attr_put_u32(nlh, NETNSA_FD, 3);
	is_int(check(GATE_HOST, nlh), -EPERM,
	       "the nsid of a descriptor it did not give: refused");

	nlh = start(&u, RTM_GETLINK, NLM_F_DUMP);
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	is_int(check(GATE_HOST, nlh), 0, "a link dump passes");
	nlh = start(&u, RTM_NEWRULE, NLM_F_CREATE);
	mnl_nlmsg_put_extra_header(nlh, 12);
	is_int(check(GATE_HOST, nlh), -EPERM, "a message type not on the list "
	       "(RTM_NEWRULE): refused");
	nlh = start(&u, RTM_DELROUTE, 0);
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg));
	is_int(check(GATE_NS, nlh), -EPERM, "RTM_DELROUTE: refused");
	nlh = link_msg(&u, RTM_DELLINK, 0, "nsr42");
	nlh->nlmsg_len += 4;	/* a datagram longer than its message */
	is_int(gate_check(&pool, GATE_HOST, nlh, nlh->nlmsg_len - 4, fd_of,
			  NULL, why, sizeof(why)), -EPERM,
	       "a length that is not the datagram's: refused");
}

static void test_decode(void)
{
	union priv_req q;
	struct priv_ns ns;
	struct priv_handle h = { { PRIV_NL_OPEN, sizeof(h) }, 0 };
	const char *bad;
	char raw[4] = { 0 };

	memset(&ns, 0, sizeof(ns));
	ns.h.type = PRIV_NS_OPEN;
	ns.h.len = sizeof(ns);
	ns.flags = 1;
	strcpy(ns.ns, "alice");
	is_int(priv_decode(&ns, sizeof(ns), &q, &bad), PRIV_NS_OPEN,
	       "NS_OPEN decodes");
	strcpy(ns.ns, "..");
	is_int(priv_decode(&ns, sizeof(ns), &q, &bad), -EBADMSG,
	       "NS_OPEN of \"..\": refused");
	strcpy(ns.ns, "a/b");
	is_int(priv_decode(&ns, sizeof(ns), &q, &bad), -EBADMSG,
	       "NS_OPEN of a path: refused");
	memset(ns.ns, 'x', sizeof(ns.ns));
	is_int(priv_decode(&ns, sizeof(ns), &q, &bad), -EBADMSG,
	       "a name without its NUL: refused");
	strcpy(ns.ns, "alice");
	ns.flags = 8;
	is_int(priv_decode(&ns, sizeof(ns), &q, &bad), -EBADMSG,
	       "unknown flags: refused");
	is_int(priv_decode(&h, sizeof(h), &q, &bad), PRIV_NL_OPEN,
	       "NL_OPEN decodes");
	is_int(priv_decode(&h, sizeof(h) - 1, &q, &bad), -EBADMSG,
	       "a datagram shorter than its length: refused");
	h.h.type = 99;
	is_int(priv_decode(&h, sizeof(h), &q, &bad), -EBADMSG,
	       "an unknown type: refused");
	is_int(priv_decode(raw, sizeof(raw), &q, &bad), -EBADMSG,
	       "shorter than a header: refused");
	{
		union priv_req l;
		struct sockaddr_in in = { .sin_family = AF_INET,
					  .sin_port = htons(53) };

		memset(&l, 0, sizeof(l));
		l.listen.h.type = PRIV_LISTEN;
		l.listen.h.len = (uint32_t)priv_listen_size(2);
		l.listen.n = 2;
		strcpy(l.listen.ns, "alice");
		in.sin_addr.s_addr = htonl(0x7f000035);
		priv_addr_from_sa((struct sockaddr *)&in, sizeof(in),
				  &l.listen.addr[0]);
		l.listen.addr[1] = l.listen.addr[0];
		l.listen.addr[1].dgram = 1;
		is_int(priv_decode(&l, l.listen.h.len, &q, &bad), PRIV_LISTEN,
		       "LISTEN of a TCP and a UDP socket decodes");
		ok(q.listen.addr[1].dgram == 1 && !q.listen.addr[0].dgram,
		   "... each with its kind");
		l.listen.addr[1].dgram = 2;
		is_int(priv_decode(&l, l.listen.h.len, &q, &bad), -EBADMSG,
		       "a socket kind other than 0 or 1: refused");
	}
}

int main(void)
{
	prov_pool_init(&pool);
	test_templates();
	test_gate();
	test_decode();
	return done_testing();
}
