/* SPDX-License-Identifier: MIT */
/* nspriv: talk to nsrelayd's privileged helper as the engine would, with
 * requests the engine never makes, to see it refuse them (t/privsep.t).
 *
 *   nspriv CONFIG dellink NAME       RTM_DELLINK of NAME on the host
 *   nspriv CONFIG up-index N         RTM_NEWLINK (up) of index N, host
 *   nspriv CONFIG addaddr A/PLEN     RTM_NEWADDR of A on index 1, host
 *   nspriv CONFIG route-host GW      a default route on the host
 *   nspriv CONFIG newrule            RTM_NEWRULE (not provisioning's)
 *   nspriv CONFIG getlink            a link dump (allowed)
 *   nspriv CONFIG nsopen NAME        NS_OPEN of NAME (no create)
 *
 * The helper is forked from here with CONFIG, as nsrelayd forks it (run
 * as root).  Prints one line, "ok" or "error ERRNO: REASON", and exits 0
 * when it could ask.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "config/config.h"
#include "engine/privc.h"

static int ask_nl(struct privc *pc, struct nlmsghdr *nlh)
{
	uint32_t portid;
	union {
		struct nlmsghdr align;
		char b[65536];
	} u;
	ssize_t n;
	int fd = privc_nl_open(pc, false, 0, &portid);

	if (fd < 0) {
		printf("error %d: nl_open: %s\n", -fd, strerror(-fd));
		return 0;
	}
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	if (send(fd, nlh, nlh->nlmsg_len, 0) < 0) {
		perror("send");
		return 1;
	}
	for (;;) {
		struct nlmsghdr *r = (struct nlmsghdr *)u.b;
		int len;

		n = recv(fd, u.b, sizeof(u.b), 0);
		if (n <= 0) {
			printf("error: the socket closed\n");
			return 1;
		}
		len = (int)n;
		for (; mnl_nlmsg_ok(r, len); r = mnl_nlmsg_next(r, &len)) {
			const struct nlmsgerr *e;
			const struct nlattr *a;
			const char *msg = "";

			if (r->nlmsg_type == NLMSG_DONE) {
				printf("ok\n");
				return 0;
			}
			if (r->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(r);
			if (!e->error) {
				printf("ok\n");
				return 0;
			}
			if (r->nlmsg_flags & NLM_F_ACK_TLVS) {
				size_t off = sizeof(*e);

				if (!(r->nlmsg_flags & NLM_F_CAPPED))
					off += e->msg.nlmsg_len - sizeof(e->msg);
				mnl_attr_for_each(a, r, off)
					if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
						msg = mnl_attr_get_str(a);
			}
			printf("error %d: %s\n", -e->error, msg);
			return 0;
		}
	}
}

int main(int argc, char **argv)
{
	struct config_errors errs = { 0 };
	union {
		struct nlmsghdr align;
		char b[1024];
	} u;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(u.b);
	struct config *cfg;
	struct privc *pc;
	const char *cmd;
	int err;

	if (argc < 3) {
		fprintf(stderr, "usage: nspriv CONFIG CMD [ARG]\n");
		return 2;
	}
	if (config_load(argv[1], &cfg, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		return 2;
	}
	pc = privc_start(cfg, &err);
	if (!pc) {
		fprintf(stderr, "nspriv: %s\n", strerror(-err));
		return 1;
	}
	cmd = argv[2];
	if (!strcmp(cmd, "nsopen") && argc > 3) {
		struct netns_id id;
		uint32_t h;
		char why[PRIV_WHY_MAX];
		int r = privc_ns_open(pc, true, argv[3], 0, &h, &id, why,
				      sizeof(why));

		if (r < 0)
			printf("error %d: %s\n", -r, why);
		else
			printf("ok\n");
		privc_free(pc);
		config_free(cfg);
		return 0;
	}
	if ((!strcmp(cmd, "dellink") || !strcmp(cmd, "up-index")) && argc > 3) {
		struct ifinfomsg *ifi;

		nlh->nlmsg_type = cmd[0] == 'd' ? RTM_DELLINK : RTM_NEWLINK;
		ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
		if (cmd[0] == 'd') {
			mnl_attr_put_strz(nlh, IFLA_IFNAME, argv[3]);
		} else {
			ifi->ifi_index = atoi(argv[3]);
			ifi->ifi_flags = ifi->ifi_change = IFF_UP;
		}
	} else if (!strcmp(cmd, "addaddr") && argc > 3) {
		struct ifaddrmsg *ifa;
		char a[64], *slash;
		unsigned char b[16];

		snprintf(a, sizeof(a), "%s", argv[3]);
		slash = strchr(a, '/');
		if (!slash)
			return 2;
		*slash = '\0';
		nlh->nlmsg_type = RTM_NEWADDR;
		nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
		ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
		ifa->ifa_family = AF_INET;
		ifa->ifa_prefixlen = (unsigned char)atoi(slash + 1);
		ifa->ifa_index = 1;
		if (inet_pton(AF_INET, a, b) != 1)
			return 2;
		mnl_attr_put(nlh, IFA_LOCAL, 4, b);
	} else if (!strcmp(cmd, "route-host") && argc > 3) {
		struct rtmsg *rtm;
		unsigned char b[4];

		nlh->nlmsg_type = RTM_NEWROUTE;
		nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
		rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		rtm->rtm_family = AF_INET;
		rtm->rtm_table = RT_TABLE_MAIN;
		rtm->rtm_type = RTN_UNICAST;
		if (inet_pton(AF_INET, argv[3], b) != 1)
			return 2;
		mnl_attr_put(nlh, RTA_GATEWAY, 4, b);
	} else if (!strcmp(cmd, "newrule")) {
		nlh->nlmsg_type = RTM_NEWRULE;
		nlh->nlmsg_flags = NLM_F_CREATE;
		mnl_nlmsg_put_extra_header(nlh, 12);
	} else if (!strcmp(cmd, "getlink")) {
		nlh->nlmsg_type = RTM_GETLINK;
		nlh->nlmsg_flags = NLM_F_DUMP;
		mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	} else {
		fprintf(stderr, "nspriv: unknown command %s\n", cmd);
		return 2;
	}
	err = ask_nl(pc, nlh);
	privc_free(pc);
	config_free(cfg);
	return err;
}
