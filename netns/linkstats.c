/* SPDX-License-Identifier: MIT */
/* linkstats: the host's link counters from an rtnetlink dump, cached.
 *
 * Theory of operation
 *
 * One RTM_GETLINK dump on a netlink socket of the host namespace (netns/nl.c,
 * asynchronous on the loop: the kernel's answer is read a buffer per loop
 * turn, so thousands of links never stall the relay) gives every link's
 * name and IFLA_STATS64.  The answer is collected into a fresh array, which
 * replaces the cache, sorted by name, once the dump ends well; a failed or
 * interrupted dump leaves the previous cache in place.  Readers look names up
 * with a binary search.
 *
 * Freshness is the caller's call: linkstats_refresh(max_age) answers at once
 * when the cache is young enough, else starts a dump or joins the one
 * running; every waiter of a dump is told when it ends.  A socket that
 * failed for good (nl_error()) is replaced on the next refresh.  Needs no
 * privilege (reading links is open to anyone).  Never logs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <libmnl/libmnl.h>

#include "netns/linkstats.h"
#include "netns/nl.h"

struct entry {
	char name[IFNAMSIZ];
	struct linkstats_counters c;
};

struct linkstats_wait {
	TAILQ_ENTRY(linkstats_wait) next;
	linkstats_done_fn done;
	void *arg;
};

struct linkstats {
	struct event_base *base;
	struct nl *nl;
	/* the cache */
	struct entry *e;
	size_t n;
	uint64_t at_us;			/* monotonic; 0: never */
	uint64_t last_us;		/* duration of the last dump */
	/* a dump in progress */
	bool running;
	struct entry *ne;
	size_t nn, ncap;
	uint64_t started_us;
	TAILQ_HEAD(, linkstats_wait) waits;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct linkstats *linkstats_new(struct event_base *base)
{
	struct linkstats *ls = calloc(1, sizeof(*ls));

	if (!ls)
		return NULL;
	ls->base = base;
	TAILQ_INIT(&ls->waits);
	return ls;
}

void linkstats_free(struct linkstats *ls)
{
	struct linkstats_wait *w;

	if (!ls)
		return;
	while ((w = TAILQ_FIRST(&ls->waits))) {
		TAILQ_REMOVE(&ls->waits, w, next);
		free(w);
	}
	nl_free(ls->nl);	/* the dump's done runs: nothing waits now */
	free(ls->ne);
	free(ls->e);
	free(ls);
}

static const struct nl_attr_rule link_rules[] = {
	{ IFLA_IFNAME, MNL_TYPE_NUL_STRING, 0 },
	{ IFLA_STATS64, MNL_TYPE_UNSPEC, 0 },
};
static const struct nl_policy link_policy = NL_POLICY(IFLA_MAX, link_rules);

static int on_link(const struct nlmsghdr *nlh, void *arg)
{
	struct linkstats *ls = arg;
	const struct nlattr *tb[IFLA_MAX + 1];
	struct rtnl_link_stats64 st;
	const char *name;
	struct entry *e;

	if (!nlh) {		/* interrupted, repeated: start over */
		ls->nn = 0;
		return 0;
	}
	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	if (nl_attr_parse(nlh, sizeof(struct ifinfomsg), &link_policy,
			  tb) < 0 || !tb[IFLA_IFNAME] || !tb[IFLA_STATS64])
		return 0;	/* not ours to judge: skip it */
	name = mnl_attr_get_str(tb[IFLA_IFNAME]);
	/* the structure grew over kernel versions: take the fields we know,
	 * zeros for those an older kernel does not send */
	memset(&st, 0, sizeof(st));
	memcpy(&st, mnl_attr_get_payload(tb[IFLA_STATS64]),
	       mnl_attr_get_payload_len(tb[IFLA_STATS64]) < sizeof(st) ?
	       mnl_attr_get_payload_len(tb[IFLA_STATS64]) : sizeof(st));
	if (strlen(name) >= IFNAMSIZ)
		return 0;
	if (ls->nn == ls->ncap) {
		size_t cap = ls->ncap ? ls->ncap * 2 : 64;
		struct entry *ne = realloc(ls->ne, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		ls->ne = ne;
		ls->ncap = cap;
	}
	e = &ls->ne[ls->nn++];
	strcpy(e->name, name);
	e->c.rx_bytes = st.rx_bytes;
	e->c.tx_bytes = st.tx_bytes;
	e->c.rx_packets = st.rx_packets;
	e->c.tx_packets = st.tx_packets;
	e->c.rx_dropped = st.rx_dropped;
	e->c.tx_dropped = st.tx_dropped;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name,
		      ((const struct entry *)b)->name);
}

static void on_dump(int err, const char *extack, void *arg)
{
	struct linkstats *ls = arg;
	struct linkstats_wait *w;
	TAILQ_HEAD(, linkstats_wait) done;

	(void)extack;
	ls->running = false;
	if (!err) {
		qsort(ls->ne, ls->nn, sizeof(*ls->ne), by_name);
		free(ls->e);
		ls->e = ls->ne;
		ls->n = ls->nn;
		ls->ne = NULL;
		ls->ncap = 0;
		ls->at_us = now_us();
		ls->last_us = ls->at_us - ls->started_us;
	}
	ls->nn = 0;
	/* callbacks may refresh again or cancel others: take the list */
	TAILQ_INIT(&done);
	TAILQ_CONCAT(&done, &ls->waits, next);
	while ((w = TAILQ_FIRST(&done))) {
		TAILQ_REMOVE(&done, w, next);
		if (w->done)
			w->done(w->arg, err);
		free(w);
	}
}

int linkstats_refresh(struct linkstats *ls, unsigned max_age_ms,
		      linkstats_done_fn done, void *arg,
		      struct linkstats_wait **wp)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct linkstats_wait *w;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	int err;

	if (!ls->running && ls->at_us &&
	    now_us() - ls->at_us <= (uint64_t)max_age_ms * 1000)
		return 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->done = done;
	w->arg = arg;
	if (!ls->running) {
		if (ls->nl && nl_error(ls->nl)) {
			nl_free(ls->nl);
			ls->nl = NULL;
		}
		if (!ls->nl && !(ls->nl = nl_open(ls->base, -1, &err))) {
			free(w);
			return err;
		}
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_GETLINK;
		nlh->nlmsg_flags = NLM_F_DUMP;
		ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
		ifm->ifi_family = AF_UNSPEC;
		ls->nn = 0;
		ls->started_us = now_us();
		err = nl_request(ls->nl, nlh, on_link, on_dump, ls);
		if (err < 0) {
			free(w);
			return err;
		}
		ls->running = true;
	}
	TAILQ_INSERT_TAIL(&ls->waits, w, next);
	*wp = w;
	return 0;
}

void linkstats_cancel(struct linkstats_wait *w)
{
	/* marked, not unlinked: on_dump frees it without a call */
	if (w)
		w->done = NULL;
}

int linkstats_get(const struct linkstats *ls, const char *ifname,
		  struct linkstats_counters *out)
{
	struct entry key, *e;

	if (!ls || !ls->n || strlen(ifname) >= IFNAMSIZ)
		return -ENOENT;
	strcpy(key.name, ifname);
	e = bsearch(&key, ls->e, ls->n, sizeof(*ls->e), by_name);
	if (!e)
		return -ENOENT;
	*out = e->c;
	return 0;
}

unsigned linkstats_count(const struct linkstats *ls)
{
	return ls ? (unsigned)ls->n : 0;
}

uint64_t linkstats_last_us(const struct linkstats *ls)
{
	return ls ? ls->last_us : 0;
}
