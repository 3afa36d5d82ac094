/* SPDX-License-Identifier: MIT */
/* provision: namespaces, veth pairs, addresses and routes, reconciled.
 *
 * Theory of operation
 *
 * A job provisions (or deprovisions) one namespace.  Jobs for the same name
 * form a FIFO on a per-name entry: only the first one runs; a new call that is
 * identical to the last job of its name joins it as one more waiter instead of
 * running again.  At most `parallel` jobs run at once (each holds a namespace
 * descriptor and a netlink socket inside the namespace while it runs; both
 * are closed when it ends, so descriptors do not grow with the number of
 * namespaces).  The entry remembers a namespace made ready, with the nsfs
 * inode of its file: a later identical provision that finds the same inode
 * there succeeds without netlink work.
 *
 * Provisioning, step by step.  Every step sends its requests at once (on the
 * host socket and on the socket inside the namespace, each in order), waits
 * for all of them, then decides the next step from what the kernel said:
 *
 *   NS       DIR/NAME holds a network namespace (nsfs, NS_GET_NSTYPE): adopt
 *            it.  Missing: create it as `ip netns add` does (DIR 0755, made a
 *            shared mount, bound onto itself first if it is not a mount
 *            point; the file O_EXCL mode 0; unshare(CLONE_NEWNET), open
 *            /proc/thread-self/ns/net and the namespace's netlink socket,
 *            setns() home at once - failing that aborts - then bind-mount the
 *            namespace on the file).  A file that is not a namespace may be
 *            `ip netns add` half-way: look again a few times, 50 ms apart;
 *            if it stays an empty mode-0 file it is the leftover of a crash
 *            between create and mount, removed and replaced; anything else
 *            is an error.
 *   PROBE    host: GET link HOST_IF, then GETNSID of the namespace (after the
 *            GET: that allocates the nsid).  namespace: dump links.
 *            HOST_IF exists: it must be a veth whose peer (IFLA_LINK_NETNSID
 *            = our nsid, IFLA_LINK = an index in the namespace) is NS_IF in
 *            our namespace.  Missing: NS_IF must not exist in the namespace.
 *            (A namespace this job created has only lo: just the GET.)
 *   CREATE   RTM_NEWLINK veth HOST_IF (up), peer NS_IF created directly in
 *            the namespace (IFLA_NET_NS_FD inside VETH_INFO_PEER: the peer
 *            name never exists on the host).  Then PROBE again, inside the
 *            namespace only: NS_IF's IFLA_LINK is the host end's index.
 *   INSPECT  namespace: dump addresses, dump routes (unless this job created
 *            it: then there are none).  host: dump addresses
 *            of HOST_IF (kernel-filtered; skipped for a veth just created),
 *            and is each of the four addresses assigned somewhere on the
 *            host?  IPv6: RTM_GETADDR for the address (a hash lookup that
 *            also sees tentative addresses and down links); IPv4 has no
 *            such request: RTM_GETROUTE, RTN_LOCAL means assigned.
 *   APPLY    only what is missing, in dependency order per socket: host end
 *            up, host addresses; lo up, namespace end up, namespace
 *            addresses (IPv6 with IFA_F_NODAD: usable at once, no DAD on a
 *            two-ended link), default routes (proto static) via the host end.
 *
 * Idempotence: every step reads before it writes and APPLY sends nothing for
 * what already matches, so provisioning a ready namespace makes no change and
 * never bounces a link.  What is never "fixed", because it may belong to
 * someone else: a host interface with our name that is not our veth (another
 * kind, or a veth whose peer is on the host or in another namespace - the
 * kernel destroys a veth with its namespace, so a leftover whose peer is
 * elsewhere means some process keeps that namespace alive); NS_IF in our
 * namespace not paired with HOST_IF; one of our addresses on another
 * interface or with another prefix; a different default route.  Those fail
 * the job with -EEXIST or -EADDRINUSE and a message naming the piece.  What
 * is fixed: missing pieces, links that are down, and the empty placeholder
 * file of an interrupted namespace creation.  If a job fails after creating
 * the namespace or the veth itself, it removes them again (what existed
 * before is left as it was).
 *
 * Deprovisioning removes exactly what provisioning creates: HOST_IF when it
 * is a veth whose peer is in this namespace (the peer goes with it), then
 * the bind mount (umount2 MNT_DETACH) and the file, as `ip netns del` does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* setns, unshare (configure defines it too) */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/net_namespace.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "netns/nl.h"
#include "netns/provision.h"

#define PROV_DEFAULT_PARALLEL	32
#define PROV_MSG_MAX		512
#define PROV_REQ_BUF		1024
#define PROV_NS_RETRIES		10	/* looks at a non-namespace file */
#define PROV_NS_RETRY_MS	50
#define PROV_MAX_LINKS		4096	/* links remembered from one dump */

enum prov_op { OP_UP, OP_DOWN };

enum prov_step {
	S_NS,		/* open or create the namespace (synchronous) */
	S_PROBE,	/* host link, nsid, namespace links */
	S_CREATE,	/* the veth pair */
	S_INSPECT,	/* addresses, routes, addresses in use */
	S_APPLY,	/* what is missing */
	S_UNDO,		/* failed: remove what this job created */
	S_DPROBE,	/* deprovision: host link, nsid */
	S_DDEL,		/* deprovision: delete the veth */
	S_DFILE,	/* deprovision: unmount and unlink */
};

/* The four addresses of a spec. */
enum { T_H4, T_N4, T_H6, T_N6, T_MAX };

struct prov_link {
	uint32_t index;
	uint32_t flags;
	uint32_t peer;			/* IFLA_LINK */
	int32_t nsid;			/* IFLA_LINK_NETNSID */
	bool has_peer, has_nsid, veth;
	char name[IFNAMSIZ];
	char kind[16];
};

struct prov_target {
	int family;
	const void *addr;		/* into job->spec */
	unsigned plen;
	bool host_side;
	bool here;			/* on its link, right prefix */
	bool wrong[2];			/* per dump (SRC_*): other prefix, or */
	char where[2][96];		/* on another interface; where */
	bool local;			/* RTN_LOCAL on the host */
};

/* Which address dump saw it: each forgets only its own on a restart. */
enum { SRC_NS, SRC_HOST };

struct prov_waiter {
	struct prov_waiter *next;
	prov_cb cb;
	void *arg;
};

struct prov_ent;

struct prov_job {
	TAILQ_ENTRY(prov_job) q;	/* prov->runq, ->running or ->done */
	TAILQ_ENTRY(prov_job) same;	/* ent->jobs */
	struct prov *prov;
	struct prov_ent *ent;
	enum prov_op op;
	enum prov_step step;
	struct prov_spec spec;
	struct prov_waiter *waiters, **wtail;
	unsigned pending;		/* netlink requests of this step */
	bool finished, sleeping;
	int err;
	char msg[PROV_MSG_MAX];
	char path[PATH_MAX];

	int nsfd;
	struct stat ns_st;
	struct nl *nsnl;
	struct event *timer;		/* NS retries */
	unsigned ns_tries;
	bool ns_created, veth_created, probed_after_create;
	bool rm_file;			/* deprovision: a placeholder */

	struct prov_link host;
	bool host_found;
	int32_t nsid;
	struct prov_link *links;	/* the namespace's, from the dump */
	size_t nlinks;
	struct prov_link *peer, *lo;	/* into links, after PROBE */

	struct prov_target t[T_MAX];
	bool def_ok[2], def_other[2];	/* [0] IPv4, [1] IPv6 */
	char def_where[2][96];
};

/* One netlink request of a job: what it is, for its answer and messages. */
enum req_kind {
	R_PLAIN,	/* any error fails the job */
	R_HOST_GET,	/* ENODEV = no such link */
	R_NSID,
	R_NS_LINKS,
	R_NS_ADDRS,
	R_NS_ROUTES,
	R_HOST_ADDRS,
	R_ROUTE_GET,	/* "unreachable" answers = not local */
	R_ADDR_GET,	/* EADDRNOTAVAIL = not assigned on the host */
	R_BEST_EFFORT,	/* errors ignored (undo) */
	R_DEL,		/* ENODEV = already gone */
};

struct prov_req {
	struct prov_job *job;
	enum req_kind kind;
	int idx;
	char what[160];
};

struct prov_ent {
	struct prov_ent *hnext;
	/* the first one runs, or waits in runq */
	TAILQ_HEAD(prov_ent_jobs, prov_job) jobs;
	bool ready;
	struct prov_spec spec;		/* when ready */
	dev_t dev;
	ino_t ino;
	char name[];
};

TAILQ_HEAD(prov_job_list, prov_job);

struct prov {
	struct event_base *base;
	char *dir;
	int hostfd;
	struct nl *host;
	struct event *kick;		/* start runnable jobs */
	struct event *done_ev;		/* run callbacks of finished jobs */
	struct prov_job_list runq, running, done;
	unsigned active, parallel, timeout_ms;
	bool dir_ready;
	struct prov_ent **tab;
	size_t tab_size, n_ent;
	unsigned busy;
	bool dying;
};

static void job_advance(struct prov_job *j);

/* ------------------------------------------------------------ entries */

static size_t ent_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static struct prov_ent **ent_slot(struct prov *prov, const char *name)
{
	struct prov_ent **pp;

	pp = &prov->tab[ent_hash(name) & (prov->tab_size - 1)];
	while (*pp && strcmp((*pp)->name, name))
		pp = &(*pp)->hnext;
	return pp;
}

static int ent_grow(struct prov *prov)
{
	struct prov_ent **tab, *e, *next;
	size_t size = prov->tab_size * 2, i, h;

	tab = calloc(size, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (i = 0; i < prov->tab_size; i++) {
		for (e = prov->tab[i]; e; e = next) {
			next = e->hnext;
			h = ent_hash(e->name) & (size - 1);
			e->hnext = tab[h];
			tab[h] = e;
		}
	}
	free(prov->tab);
	prov->tab = tab;
	prov->tab_size = size;
	return 0;
}

static struct prov_ent *ent_get(struct prov *prov, const char *name)
{
	struct prov_ent **pp = ent_slot(prov, name), *e = *pp;

	if (e)
		return e;
	if (prov->n_ent >= prov->tab_size && ent_grow(prov) == 0)
		pp = ent_slot(prov, name);
	e = calloc(1, sizeof(*e) + strlen(name) + 1);
	if (!e)
		return NULL;
	strcpy(e->name, name);
	TAILQ_INIT(&e->jobs);
	*pp = e;
	prov->n_ent++;
	return e;
}

static void ent_put(struct prov *prov, struct prov_ent *e)
{
	struct prov_ent **pp;

	if (e->ready || !TAILQ_EMPTY(&e->jobs))
		return;
	pp = ent_slot(prov, e->name);
	*pp = e->hnext;
	prov->n_ent--;
	free(e);
}

/* ------------------------------------------------------------ jobs */

static void job_error(struct prov_job *j, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record the first error of a job: err (-errno) and its message. */
static void job_error(struct prov_job *j, int err, const char *fmt, ...)
{
	va_list ap;

	if (j->err)
		return;
	j->err = err < 0 ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(j->msg, sizeof(j->msg), fmt, ap);
	va_end(ap);
}

static void job_release(struct prov_job *j)
{
	if (j->nsfd >= 0)
		close(j->nsfd);
	j->nsfd = -1;
	nl_free(j->nsnl);
	j->nsnl = NULL;
	if (j->timer)
		event_del(j->timer);
	free(j->links);
	j->links = NULL;
	j->nlinks = 0;
	j->peer = j->lo = NULL;
}

static void job_free(struct prov_job *j)
{
	struct prov_waiter *w, *next;

	job_release(j);
	if (j->timer)
		event_free(j->timer);
	for (w = j->waiters; w; w = next) {
		next = w->next;
		free(w);
	}
	free(j);
}

/* Run the callbacks of a finished job, then free it. */
static void job_deliver(struct prov_job *j)
{
	struct prov_waiter *w;

	while ((w = j->waiters)) {
		j->waiters = w->next;
		w->cb(w->arg, j->err, j->err ? j->msg : NULL);
		free(w);
	}
	job_free(j);
}

static void job_finish(struct prov_job *j)
{
	struct prov *prov = j->prov;
	struct prov_ent *e = j->ent;
	struct prov_job *next;

	j->finished = true;
	if (j->op == OP_UP && !j->err) {
		e->ready = true;
		e->spec = j->spec;
		e->dev = j->ns_st.st_dev;
		e->ino = j->ns_st.st_ino;
	} else {
		e->ready = false;
	}
	job_release(j);
	TAILQ_REMOVE(&prov->running, j, q);
	prov->active--;
	TAILQ_REMOVE(&e->jobs, j, same);
	next = TAILQ_FIRST(&e->jobs);
	if (next)
		TAILQ_INSERT_TAIL(&prov->runq, next, q);
	j->ent = NULL;
	ent_put(prov, e);
	TAILQ_INSERT_TAIL(&prov->done, j, q);
	event_active(prov->done_ev, EV_TIMEOUT, 0);
	event_active(prov->kick, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------------ parsing */

static int link_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, IFLA_MAX) < 0)
		return MNL_CB_OK;	/* newer than our headers: unused */
	switch (type) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			return MNL_CB_ERROR;
		break;
	case IFLA_LINK:
	case IFLA_LINK_NETNSID:
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		break;
	case IFLA_LINKINFO:
		if (mnl_attr_validate(a, MNL_TYPE_NESTED) < 0)
			return MNL_CB_ERROR;
		break;
	default:
		return MNL_CB_OK;
	}
	tb[type] = a;
	return MNL_CB_OK;
}

static int linkinfo_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, IFLA_INFO_MAX) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(a) != IFLA_INFO_KIND)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_ERROR;
	tb[IFLA_INFO_KIND] = a;
	return MNL_CB_OK;
}

/* RTM_NEWLINK -> li.  Returns 0, 1 (not a link message) or -EPROTO. */
static int parse_link(const struct nlmsghdr *nlh, struct prov_link *li)
{
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	const struct nlattr *info[IFLA_INFO_MAX + 1] = { 0 };
	const struct ifinfomsg *ifi;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 1;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return -EPROTO;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, tb) < 0)
		return -EPROTO;
	if (!tb[IFLA_IFNAME] || ifi->ifi_index <= 0)
		return -EPROTO;
	if (tb[IFLA_LINKINFO] &&
	    mnl_attr_parse_nested(tb[IFLA_LINKINFO], linkinfo_attr_cb,
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

static int addr_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, IFA_MAX) < 0)
		return MNL_CB_OK;
	if (type != IFA_ADDRESS && type != IFA_LOCAL)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_BINARY) < 0)
		return MNL_CB_ERROR;
	tb[type] = a;
	return MNL_CB_OK;
}

/* RTM_NEWADDR -> ad.  Returns 0, 1 (not IPv4/IPv6) or -EPROTO. */
static int parse_addr(const struct nlmsghdr *nlh, struct prov_addr *ad)
{
	const struct nlattr *tb[IFA_MAX + 1] = { 0 }, *a;
	const struct ifaddrmsg *ifa;
	size_t alen;

	if (nlh->nlmsg_type != RTM_NEWADDR)
		return 1;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
		return -EPROTO;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return 1;
	if (mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, tb) < 0)
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

static int route_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, RTA_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case RTA_TABLE:
	case RTA_OIF:
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		break;
	case RTA_GATEWAY:
		if (mnl_attr_validate(a, MNL_TYPE_BINARY) < 0)
			return MNL_CB_ERROR;
		break;
	default:
		return MNL_CB_OK;
	}
	tb[type] = a;
	return MNL_CB_OK;
}

/* RTM_NEWROUTE -> rt.  Returns 0, 1 (not IPv4/IPv6) or -EPROTO. */
static int parse_route(const struct nlmsghdr *nlh, struct prov_route *rt)
{
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	const struct rtmsg *rtm;
	size_t alen;

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return 1;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm))
		return -EPROTO;
	rtm = mnl_nlmsg_get_payload(nlh);
	if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6)
		return 1;
	if (mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb) < 0)
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

static int nsid_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, NETNSA_MAX) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(a) != NETNSA_NSID)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return MNL_CB_ERROR;
	tb[NETNSA_NSID] = a;
	return MNL_CB_OK;
}

/* ------------------------------------------------------------ answers */

static const char *ntop(int family, const void *addr, char *buf, size_t n)
{
	if (!inet_ntop(family, addr, buf, (socklen_t)n))
		snprintf(buf, n, "?");
	return buf;
}

static struct prov_link *job_link_by_index(struct prov_job *j, uint32_t idx)
{
	size_t i;

	for (i = 0; i < j->nlinks; i++)
		if (j->links[i].index == idx)
			return &j->links[i];
	return NULL;
}

static struct prov_link *job_link_by_name(struct prov_job *j, const char *n)
{
	size_t i;

	for (i = 0; i < j->nlinks; i++)
		if (!strcmp(j->links[i].name, n))
			return &j->links[i];
	return NULL;
}

static int msg_host_link(const struct nlmsghdr *nlh, void *arg)
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

static int msg_nsid(const struct nlmsghdr *nlh, void *arg)
{
	struct prov_req *q = arg;
	const struct nlattr *tb[NETNSA_MAX + 1] = { 0 };

	if (!nlh || nlh->nlmsg_type != RTM_NEWNSID)
		return 0;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct rtgenmsg))
		return -EPROTO;
	if (mnl_attr_parse(nlh, sizeof(struct rtgenmsg), nsid_attr_cb, tb) < 0)
		return -EPROTO;
	if (tb[NETNSA_NSID])
		q->job->nsid = (int32_t)mnl_attr_get_u32(tb[NETNSA_NSID]);
	return 0;
}

static int msg_ns_link(const struct nlmsghdr *nlh, void *arg)
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

static int msg_ns_addr(const struct nlmsghdr *nlh, void *arg)
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
		l = job_link_by_index(j, ad.index);
		target_wrong(t, SRC_NS, "is assigned to %s in %s",
			     l ? l->name : "another interface", j->spec.ns);
	}
	return 0;
}

static int msg_host_addr(const struct nlmsghdr *nlh, void *arg)
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

static int msg_ns_route(const struct nlmsghdr *nlh, void *arg)
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
	l = job_link_by_index(j, rt.oif);
	snprintf(j->def_where[f], sizeof(j->def_where[f]), "%s%s dev %s",
		 rt.has_gw ? "via " : "type ",
		 rt.has_gw ? ntop(rt.family, rt.gw, buf, sizeof(buf))
			   : (rt.type == RTN_UNICAST ? "unicast" : "other"),
		 l ? l->name : "?");
	return 0;
}

static int msg_route_get(const struct nlmsghdr *nlh, void *arg)
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
static int msg_addr_get(const struct nlmsghdr *nlh, void *arg)
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
		job_error(j, err, "%s: %s%s%s%s", q->what, strerror(-err),
			  extack ? " (kernel: " : "", extack ? extack : "",
			  extack ? ")" : "");
	free(q);
	if (!j->pending)
		job_advance(j);
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

static struct nl *prov_host_nl(struct prov *prov, int *err)
{
	if (prov->host && !nl_error(prov->host))
		return prov->host;
	nl_free(prov->host);
	prov->host = nl_open(prov->base, -1, err);
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
	job_error(j, err, "%s: %s", q ? q->what : "netlink request",
		  strerror(-err));
	free(q);
}

static void send_get_link(struct prov_job *j)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, j->spec.host_if);
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	j->host_found = false;
	job_send(j, true, nlh, msg_host_link, R_HOST_GET, 0,
		 "look up host interface %s", j->spec.host_if);
}

static void send_get_nsid(struct prov_job *j)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_GETNSID, 0);
	struct rtgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));

	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)j->nsfd);
	j->nsid = -1;
	job_send(j, true, nlh, msg_nsid, R_NSID, 0, "get the nsid of %s",
		 j->spec.ns);
}

static void send_dump(struct prov_job *j, bool on_host, uint16_t type,
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

static void send_set_up(struct prov_job *j, bool on_host, uint32_t index,
			const char *name)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)index;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	job_send(j, on_host, nlh, NULL, R_PLAIN, 0, "set %s up", name);
}

static void send_new_veth(struct prov_job *j)
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

/* Delete HOST_IF: by the index we checked (deprovision), or by name (undo
 * of a veth this job created, whose index may not be known yet). */
static void send_del_link(struct prov_job *j, enum req_kind kind, bool by_name)
{
	struct prov_buf buf;
	struct nlmsghdr *nlh = req_start(&buf, RTM_DELLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	if (by_name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, j->spec.host_if);
	else
		ifi->ifi_index = (int)j->host.index;
	job_send(j, true, nlh, NULL, kind, 0, "delete host interface %s",
		 j->spec.host_if);
}

static void send_add_addr(struct prov_job *j, int ti, uint32_t index,
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
		 "add address %s/%u to %s", ntop(t->family, t->addr, a,
						 sizeof(a)), t->plen, ifname);
}

static void send_add_default(struct prov_job *j, int f)
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
		 ntop(gw->family, gw->addr, a, sizeof(a)), j->spec.ns_if);
}

/* Is target ti assigned on the host (see INSPECT)?  Sets t->local. */
static void send_local_check(struct prov_job *j, int ti)
{
	struct prov_target *t = &j->t[ti];
	struct prov_buf buf;
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	struct rtmsg *rtm;
	char a[INET6_ADDRSTRLEN];

	t->local = false;
	ntop(t->family, t->addr, a, sizeof(a));
	if (t->family == AF_INET6) {
		nlh = req_start(&buf, RTM_GETADDR, 0);
		ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
		ifa->ifa_family = AF_INET6;
		mnl_attr_put(nlh, IFA_ADDRESS, 16, t->addr);
		job_send(j, true, nlh, msg_addr_get, R_ADDR_GET, ti,
			 "look up %s on the host", a);
		return;
	}
	nlh = req_start(&buf, RTM_GETROUTE, 0);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	mnl_attr_put(nlh, RTA_DST, 4, t->addr);
	job_send(j, true, nlh, msg_route_get, R_ROUTE_GET, ti,
		 "look up %s on the host", a);
}

/* ------------------------------------------------------------ namespace */

static bool fd_is_netns(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC)
		return false;
	return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

/* DIR exists and is a shared mount point, as `ip netns add` makes it. */
static int prov_dir_prepare(struct prov *prov, char *why, size_t n)
{
	bool bound = false;
	int lock = -1, ret = 0;

	if (prov->dir_ready)
		return 0;
	if (mkdir(prov->dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(why, n, "mkdir %s", prov->dir);
		goto out;
	}
	while (mount("", prov->dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
		if (errno != EINVAL || bound) {
			ret = -errno;
			snprintf(why, n, "make %s a shared mount", prov->dir);
			goto out;
		}
		/* not a mount point yet: bind it onto itself, like iproute2,
		 * under its lock; if someone holds it, go on like it does */
		if (lock < 0) {
			lock = open(prov->dir, O_RDONLY | O_DIRECTORY |
				    O_CLOEXEC);
			if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) < 0) {
				close(lock);
				lock = -2;
			}
		}
		if (mount(prov->dir, prov->dir, "none", MS_BIND | MS_REC,
			  NULL) < 0) {
			ret = -errno;
			snprintf(why, n, "bind-mount %s onto itself",
				 prov->dir);
			goto out;
		}
		bound = true;
	}
	prov->dir_ready = true;
out:
	if (lock >= 0)
		close(lock);	/* releases the flock */
	return ret;
}

/* Create the namespace at j->path: file, new netns, bind mount.  Leaves
 * j->nsfd and j->nsnl open.  The calling thread is back home on return. */
static int ns_create(struct prov_job *j)
{
	struct prov *prov = j->prov;
	char src[64], why[PATH_MAX + 64];
	int fd, err, saved = 0;

	err = prov_dir_prepare(prov, why, sizeof(why));
	if (err) {
		job_error(j, err, "%s: %s", why, strerror(-err));
		return err;
	}
	fd = open(j->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		if (err == -EEXIST)	/* someone else is creating it */
			return err;
		job_error(j, err, "create %s: %s", j->path, strerror(-err));
		return err;
	}
	close(fd);

	if (unshare(CLONE_NEWNET) < 0) {
		err = -errno;
		job_error(j, err, "unshare(CLONE_NEWNET): %s", strerror(-err));
		goto out;
	}
	j->nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (j->nsfd < 0)
		saved = -errno;
	else
		j->nsnl = nl_open(prov->base, -1, &saved);
	if (setns(prov->hostfd, CLONE_NEWNET) < 0)
		abort();	/* never run on inside a foreign namespace */
	if (saved) {
		err = saved;
		job_error(j, err, "open the new namespace: %s", strerror(-err));
		goto out;
	}
	snprintf(src, sizeof(src), "/proc/self/fd/%d", j->nsfd);
	if (mount(src, j->path, "none", MS_BIND, NULL) < 0) {
		err = -errno;
		job_error(j, err, "bind-mount the namespace on %s: %s",
			  j->path, strerror(-err));
		goto out;
	}
	j->ns_created = true;
	err = 0;
out:
	if (err)
		unlink(j->path);
	return err;
}

/* After an attempt that left the file there but no namespace on it. */
static void ns_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prov_job *j = arg;

	j->sleeping = false;
	job_advance(j);
}

/* Open (or create) the namespace of j.  Returns 0 when j->nsfd is open,
 * 1 when it will look again later, -errno on failure (recorded). */
static int ns_open(struct prov_job *j, bool create)
{
	struct timeval tv = { 0, PROV_NS_RETRY_MS * 1000 };
	struct stat st;
	int fd, err;

	fd = open(j->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		err = -errno;
		job_error(j, err, "open %s: %s", j->path, strerror(-err));
		return err;
	}
	if (fd >= 0) {
		if (fd_is_netns(fd)) {
			j->nsfd = fd;
			return 0;
		}
		err = fstat(fd, &st) < 0 ? -errno : 0;
		close(fd);
		if (err) {
			job_error(j, err, "stat %s: %s", j->path,
				  strerror(-err));
			return err;
		}
		if (j->ns_tries++ < PROV_NS_RETRIES)
			goto later;
		if (!S_ISREG(st.st_mode) || st.st_size ||
		    (st.st_mode & 07777)) {
			job_error(j, -EEXIST, "%s exists and is not a network "
				  "namespace", j->path);
			return -EEXIST;
		}
		if (!create) {
			j->rm_file = true;
			return 0;
		}
		/* the placeholder of a creation that never finished */
		(void)umount2(j->path, MNT_DETACH);
		if (unlink(j->path) < 0 && errno != ENOENT) {
			err = -errno;
			job_error(j, err, "remove the stale placeholder %s: %s",
				  j->path, strerror(-err));
			return err;
		}
	}
	if (!create)
		return 0;
	err = ns_create(j);
	if (err == -EEXIST && j->ns_tries++ < PROV_NS_RETRIES)
		goto later;
	if (err == -EEXIST)
		job_error(j, err, "%s appeared but never became a namespace",
			  j->path);
	return err;
later:
	if (!j->timer) {
		j->timer = evtimer_new(j->prov->base, ns_retry_cb, j);
		if (!j->timer) {
			job_error(j, -ENOMEM, "timer: %s", strerror(ENOMEM));
			return -ENOMEM;
		}
	}
	evtimer_add(j->timer, &tv);
	j->sleeping = true;
	return 1;
}

/* ------------------------------------------------------------ steps */

/* What PROBE asks depends on what this job already did: a namespace it
 * just created holds only lo (nothing to list, and a host link with our
 * name cannot be paired with it); after CREATE, the namespace end's
 * IFLA_LINK names the host end, so only the namespace is listed. */
static void start_probe(struct prov_job *j)
{
	j->step = S_PROBE;
	j->nlinks = 0;
	if (!j->veth_created)
		send_get_link(j);
	if (!j->ns_created)
		send_get_nsid(j);
	if (!j->ns_created || j->veth_created)
		send_dump(j, false, RTM_GETLINK, 0, msg_ns_link, R_NS_LINKS,
			  "list the links of the namespace");
}

static void step_ns(struct prov_job *j)
{
	int err, r;

	r = ns_open(j, j->op == OP_UP);
	if (r)
		return;		/* error recorded, or sleeping */
	if (j->op == OP_DOWN) {
		if (j->nsfd < 0) {
			j->step = S_DFILE;
			return;
		}
		j->step = S_DPROBE;
		send_get_link(j);
		send_get_nsid(j);
		return;
	}
	if (fstat(j->nsfd, &j->ns_st) < 0) {
		err = -errno;
		job_error(j, err, "fstat: %s", strerror(-err));
		return;
	}
	if (!j->nsnl) {
		j->nsnl = nl_open(j->prov->base, j->nsfd, &err);
		if (!j->nsnl) {
			job_error(j, err, "netlink socket in the namespace: %s",
				  strerror(-err));
			return;
		}
	}
	nl_set_timeout(j->nsnl, j->prov->timeout_ms);
	start_probe(j);
}

/* After CREATE: the pair as the namespace sees it. */
static bool probe_created(struct prov_job *j)
{
	j->peer = job_link_by_name(j, j->spec.ns_if);
	if (!j->peer || !j->peer->veth || !j->peer->has_peer) {
		job_error(j, -ENODEV, "veth %s created, but %s is not in the "
			  "namespace", j->spec.host_if, j->spec.ns_if);
		return false;
	}
	memset(&j->host, 0, sizeof(j->host));
	j->host.index = j->peer->peer;
	j->host.flags = IFF_UP;		/* created up */
	j->host.veth = true;
	snprintf(j->host.name, sizeof(j->host.name), "%s", j->spec.host_if);
	j->host_found = true;
	return true;
}

/* An existing HOST_IF: ours only if its peer is NS_IF in our namespace. */
static bool probe_existing(struct prov_job *j)
{
	if (!j->host.veth) {
		job_error(j, -EEXIST, "host interface %s exists and is not a "
			  "veth (kind %s)", j->spec.host_if,
			  j->host.kind[0] ? j->host.kind : "none");
		return false;
	}
	if (!j->host.has_nsid || !j->host.has_peer) {
		job_error(j, -EEXIST, "host interface %s exists and its veth "
			  "peer is on the host, not in the namespace",
			  j->spec.host_if);
		return false;
	}
	if (j->ns_created || j->nsid < 0 || j->host.nsid != j->nsid) {
		job_error(j, -EEXIST, "host interface %s exists and its veth "
			  "peer is in another namespace (nsid %d)",
			  j->spec.host_if, j->host.nsid);
		return false;
	}
	j->peer = job_link_by_index(j, j->host.peer);
	if (!j->peer) {
		job_error(j, -ENODEV, "the peer of %s is not in the namespace",
			  j->spec.host_if);
		return false;
	}
	if (strcmp(j->peer->name, j->spec.ns_if)) {
		job_error(j, -EEXIST, "the peer of %s in the namespace is "
			  "named %s, not %s", j->spec.host_if, j->peer->name,
			  j->spec.ns_if);
		return false;
	}
	return true;
}

static void step_probe_done(struct prov_job *j)
{
	if (j->veth_created) {
		if (!probe_created(j))
			return;
	} else if (j->host_found) {
		if (!probe_existing(j))
			return;
	} else {
		if (job_link_by_name(j, j->spec.ns_if)) {
			job_error(j, -EEXIST, "%s already exists in the "
				  "namespace without a peer %s on the host",
				  j->spec.ns_if, j->spec.host_if);
			return;
		}
		j->step = S_CREATE;
		send_new_veth(j);
		return;
	}
	j->lo = job_link_by_name(j, "lo");
	if (!j->lo) {
		job_error(j, -ENODEV, "no lo in the namespace");
		return;
	}

	/* a namespace this job created has no address or route yet */
	j->step = S_INSPECT;
	if (!j->ns_created) {
		send_dump(j, false, RTM_GETADDR, 0, msg_ns_addr, R_NS_ADDRS,
			  "list the addresses of the namespace");
		send_dump(j, false, RTM_GETROUTE, 0, msg_ns_route, R_NS_ROUTES,
			  "list the routes of the namespace");
	}
	if (!j->veth_created)
		send_dump(j, true, RTM_GETADDR, j->host.index, msg_host_addr,
			  R_HOST_ADDRS, "list the addresses of the host end");
	send_local_check(j, T_H4);
	send_local_check(j, T_N4);
	send_local_check(j, T_H6);
	send_local_check(j, T_N6);
}

static void step_inspect_done(struct prov_job *j)
{
	char a[INET6_ADDRSTRLEN];
	struct prov_target *t;
	int i, f, src;

	for (i = 0; i < T_MAX; i++) {
		t = &j->t[i];
		ntop(t->family, t->addr, a, sizeof(a));
		for (src = SRC_NS; src <= SRC_HOST; src++) {
			if (t->wrong[src]) {
				job_error(j, -EADDRINUSE, "address %s %s", a,
					  t->where[src]);
				return;
			}
		}
		if (t->host_side ? (!t->here && t->local) : t->local) {
			job_error(j, -EADDRINUSE, "address %s is already "
				  "assigned on the host", a);
			return;
		}
	}
	for (f = 0; f < 2; f++) {
		if (j->def_other[f] && !j->def_ok[f]) {
			job_error(j, -EEXIST, "the namespace has another %s "
				  "default route (%s)", f ? "IPv6" : "IPv4",
				  j->def_where[f]);
			return;
		}
	}

	j->step = S_APPLY;
	if (!(j->host.flags & IFF_UP))
		send_set_up(j, true, j->host.index, j->spec.host_if);
	if (!j->t[T_H4].here)
		send_add_addr(j, T_H4, j->host.index, j->spec.host_if);
	if (!j->t[T_H6].here)
		send_add_addr(j, T_H6, j->host.index, j->spec.host_if);
	if (!(j->lo->flags & IFF_UP))
		send_set_up(j, false, j->lo->index, "lo");
	if (!(j->peer->flags & IFF_UP))
		send_set_up(j, false, j->peer->index, j->spec.ns_if);
	if (!j->t[T_N4].here)
		send_add_addr(j, T_N4, j->peer->index, j->spec.ns_if);
	if (!j->t[T_N6].here)
		send_add_addr(j, T_N6, j->peer->index, j->spec.ns_if);
	for (f = 0; f < 2; f++)
		if (!j->def_ok[f])
			send_add_default(j, f);
}

/* Failed: take back what this job created, then report the first error. */
static void step_undo(struct prov_job *j)
{
	j->step = S_UNDO;
	if (j->veth_created)
		send_del_link(j, R_BEST_EFFORT, true);
}

static void step_undo_done(struct prov_job *j)
{
	if (j->ns_created) {
		(void)umount2(j->path, MNT_DETACH);
		(void)unlink(j->path);
	}
}

static void step_dprobe_done(struct prov_job *j)
{
	j->step = S_DFILE;
	if (j->host_found && j->host.veth && j->host.has_nsid &&
	    j->nsid >= 0 && j->host.nsid == j->nsid) {
		j->step = S_DDEL;
		send_del_link(j, R_DEL, false);
	}
}

static void step_dfile(struct prov_job *j)
{
	int err;

	if (j->nsfd < 0 && !j->rm_file)
		return;		/* nothing there */
	if (umount2(j->path, MNT_DETACH) < 0 && errno != EINVAL &&
	    errno != ENOENT) {
		err = -errno;
		job_error(j, err, "unmount %s: %s", j->path, strerror(-err));
		return;
	}
	if (unlink(j->path) < 0 && errno != ENOENT) {
		err = -errno;
		job_error(j, err, "remove %s: %s", j->path, strerror(-err));
	}
}

/* Go on with j once its step has no request outstanding. */
static void job_advance(struct prov_job *j)
{
	enum prov_step step;

	while (!j->pending && !j->sleeping && !j->finished) {
		step = j->step;
		if (j->err && step != S_UNDO) {
			if (j->op == OP_UP &&
			    (j->veth_created || j->ns_created)) {
				step_undo(j);
				continue;
			}
			job_finish(j);
			return;
		}
		switch (step) {
		case S_NS:
			step_ns(j);
			break;
		case S_PROBE:
			step_probe_done(j);
			break;
		case S_CREATE:
			j->veth_created = true;
			start_probe(j);
			break;
		case S_INSPECT:
			step_inspect_done(j);
			break;
		case S_UNDO:
			step_undo_done(j);
			job_finish(j);
			return;
		case S_DPROBE:
			step_dprobe_done(j);
			break;
		case S_DDEL:
			j->step = S_DFILE;
			break;
		case S_APPLY:
			job_finish(j);
			return;
		case S_DFILE:
			step_dfile(j);
			job_finish(j);
			return;
		}
	}
}

void prov_forget(struct prov *prov, const char *name)
{
	struct prov_ent *e = *ent_slot(prov, name);

	if (!e)
		return;
	e->ready = false;
	ent_put(prov, e);
}

static void job_start(struct prov_job *j)
{
	struct prov_ent *e = j->ent;
	struct stat st;

	if (j->op == OP_UP && e->ready && prov_spec_equal(&e->spec, &j->spec) &&
	    stat(j->path, &st) == 0 && st.st_dev == e->dev &&
	    st.st_ino == e->ino) {
		j->ns_st = st;
		job_finish(j);	/* made ready by us, and still there */
		return;
	}
	j->step = S_NS;
	job_advance(j);
}

static void prov_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prov *prov = arg;
	struct prov_job *j;

	while (!prov->dying && prov->active < prov->parallel &&
	       (j = TAILQ_FIRST(&prov->runq))) {
		TAILQ_REMOVE(&prov->runq, j, q);
		TAILQ_INSERT_TAIL(&prov->running, j, q);
		prov->active++;
		job_start(j);
	}
}

static void prov_destroy(struct prov *prov)
{
	if (prov->kick)
		event_free(prov->kick);
	if (prov->done_ev)
		event_free(prov->done_ev);
	if (prov->hostfd >= 0)
		close(prov->hostfd);
	free(prov->tab);
	free(prov->dir);
	free(prov);
}

static void prov_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prov *prov = arg;
	struct prov_job *j;

	prov->busy++;
	while (!prov->dying && (j = TAILQ_FIRST(&prov->done))) {
		TAILQ_REMOVE(&prov->done, j, q);
		job_deliver(j);
	}
	if (--prov->busy == 0 && prov->dying)
		prov_destroy(prov);
}

/* ------------------------------------------------------------ API */

struct prov *prov_new(struct event_base *base, const char *netns_dir)
{
	struct prov *prov;
	int err = -ENOMEM;

	prov = calloc(1, sizeof(*prov));
	if (!prov)
		goto fail;
	prov->hostfd = -1;
	prov->base = base;
	prov->parallel = PROV_DEFAULT_PARALLEL;
	prov->timeout_ms = NL_DEFAULT_TIMEOUT_MS;
	TAILQ_INIT(&prov->runq);
	TAILQ_INIT(&prov->running);
	TAILQ_INIT(&prov->done);
	prov->tab_size = 64;
	prov->tab = calloc(prov->tab_size, sizeof(*prov->tab));
	prov->dir = strdup(netns_dir ? netns_dir : PROV_DEFAULT_NETNS_DIR);
	prov->kick = event_new(base, -1, 0, prov_kick_cb, prov);
	prov->done_ev = event_new(base, -1, 0, prov_done_cb, prov);
	if (!prov->tab || !prov->dir || !prov->kick || !prov->done_ev)
		goto fail;
	prov->hostfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (prov->hostfd < 0) {
		err = -errno;
		goto fail;
	}
	if (!prov_host_nl(prov, &err))
		goto fail;
	return prov;
fail:
	if (prov)
		prov_destroy(prov);
	errno = -err;
	return NULL;
}

void prov_free(struct prov *prov)
{
	struct prov_job *j;
	size_t i;

	if (!prov || prov->dying)
		return;
	prov->dying = true;
	prov->busy++;
	/* netlink first: cancelled requests only count down (dying) */
	TAILQ_FOREACH(j, &prov->running, q) {
		/* cppcheck-suppress uninitvar ; it does not follow TAILQ */
		nl_free(j->nsnl);
		j->nsnl = NULL;
	}
	nl_free(prov->host);
	prov->host = NULL;
	for (i = 0; i < prov->tab_size; i++) {
		struct prov_ent *e, *next;

		for (e = prov->tab[i]; e; e = next) {
			next = e->hnext;
			while ((j = TAILQ_FIRST(&e->jobs))) {
				TAILQ_REMOVE(&e->jobs, j, same);
				j->err = -ECANCELED;
				snprintf(j->msg, sizeof(j->msg), "cancelled");
				job_deliver(j);
			}
			free(e);
		}
		prov->tab[i] = NULL;
	}
	while ((j = TAILQ_FIRST(&prov->done))) {
		TAILQ_REMOVE(&prov->done, j, q);
		job_deliver(j);
	}
	if (--prov->busy == 0)
		prov_destroy(prov);
}

void prov_set_timeout(struct prov *prov, unsigned ms)
{
	prov->timeout_ms = ms ? ms : NL_DEFAULT_TIMEOUT_MS;
	if (prov->host)
		nl_set_timeout(prov->host, prov->timeout_ms);
}

void prov_set_parallel(struct prov *prov, unsigned n)
{
	prov->parallel = n ? n : PROV_DEFAULT_PARALLEL;
	event_active(prov->kick, EV_TIMEOUT, 0);
}

static void job_targets(struct prov_job *j)
{
	static const struct {
		int family;
		bool host;
	} tt[T_MAX] = {
		[T_H4] = { AF_INET, true },
		[T_N4] = { AF_INET, false },
		[T_H6] = { AF_INET6, true },
		[T_N6] = { AF_INET6, false },
	};
	int i;

	for (i = 0; i < T_MAX; i++) {
		j->t[i].family = tt[i].family;
		j->t[i].host_side = tt[i].host;
		j->t[i].plen = tt[i].family == AF_INET ? j->spec.v4_plen
						       : j->spec.v6_plen;
	}
	j->t[T_H4].addr = &j->spec.v4_host;
	j->t[T_N4].addr = &j->spec.v4_ns;
	j->t[T_H6].addr = &j->spec.v6_host;
	j->t[T_N6].addr = &j->spec.v6_ns;
}

static int prov_submit(struct prov *prov, enum prov_op op,
		       const struct prov_spec *spec, prov_cb cb, void *arg)
{
	struct prov_waiter *w = NULL;
	struct prov_ent *e = NULL;
	struct prov_job *j = NULL, *last;
	int n, err;

	if (prov->dying)
		return -ESHUTDOWN;
	if (!cb || !prov_spec_valid(spec))
		return -EINVAL;
	err = -ENOMEM;
	w = calloc(1, sizeof(*w));
	e = w ? ent_get(prov, spec->ns) : NULL;
	if (!e)
		goto fail;
	w->cb = cb;
	w->arg = arg;
	last = TAILQ_LAST(&e->jobs, prov_job_list);
	if (last && last->op == op && prov_spec_equal(&last->spec, spec)) {
		*last->wtail = w;	/* the same work, already coming */
		last->wtail = &w->next;
		return 0;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		goto fail;
	n = snprintf(j->path, sizeof(j->path), "%s/%s", prov->dir, spec->ns);
	if (n < 0 || (size_t)n >= sizeof(j->path)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	j->prov = prov;
	j->ent = e;
	j->op = op;
	j->spec = *spec;
	j->waiters = w;
	j->wtail = &w->next;
	j->nsfd = -1;
	j->nsid = -1;
	job_targets(j);
	TAILQ_INSERT_TAIL(&e->jobs, j, same);
	if (TAILQ_FIRST(&e->jobs) == j) {
		TAILQ_INSERT_TAIL(&prov->runq, j, q);
		event_active(prov->kick, EV_TIMEOUT, 0);
	}
	return 0;
fail:
	free(j);
	free(w);
	if (e)
		ent_put(prov, e);
	return err;
}

int prov_provision(struct prov *prov, const struct prov_spec *spec,
		   prov_cb cb, void *arg)
{
	return prov_submit(prov, OP_UP, spec, cb, arg);
}

int prov_deprovision(struct prov *prov, const struct prov_spec *spec,
		     prov_cb cb, void *arg)
{
	return prov_submit(prov, OP_DOWN, spec, cb, arg);
}
