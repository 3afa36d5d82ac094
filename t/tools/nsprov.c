/* SPDX-License-Identifier: MIT */
/* nsprov: test driver for netns/provision: (de)provision namespaces at once.
 *
 * nsprov [options] provision|deprovision|spec NAME INDEX [NAME INDEX ...]
 * nsprov [-d DIR] open NAME [NAME ...]
 *
 * Every NAME INDEX pair is one call of prov_provision()/prov_deprovision(),
 * all issued before the event loop runs (so they proceed concurrently, and a
 * repeated pair exercises coalescing).  INDEX is a pool index, or "uid=N"
 * for the index uid - uid base.  One line per pair as each completes:
 * "NAME ok" or "NAME error: MESSAGE".  "spec" prints the derived spec.
 * -g: a timer fires every millisecond while the calls run; at the end, on
 * stderr, "max loop gap: N us" is the longest time between two of its turns
 * (how long the event loop was held up at most), and "loop stalls: K over
 * 10 ms, S us in all" counts the gaps of 10 ms or more and adds them up
 * (how long it was held up in all, for whatever reason), and "loop
 * blocked: B us in stalls" is the part of those gaps in which the loop
 * thread was neither on a CPU nor waiting for one (from
 * /proc/thread-self/schedstat): blocked inside the kernel - a sendmsg()
 * waiting for RCU or RTNL, an unmount - rather than preempted.  A busy
 * machine makes many gaps but few blocked ms; blocking calls on the loop
 * make tens of blocked ms each.  B is -1 without schedstat.
 * "open" calls netns_open() on each NAME in DIR (default /run/netns) and
 * prints "NAME ok" or "NAME ERRNO-NAME" (ENOENT, ELOOP, EAGAIN, ENOTTY, or
 * the number).
 * Exit status: 0 all succeeded, 1 some failed, 2 usage or setup error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>

#include "netns/netns.h"
#include "netns/provision.h"

struct item {
	const char *name;
	struct event_base *base;
	unsigned *outstanding;
	int *failed;
	int quiet;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: nsprov [-d DIR] open NAME [NAME ...]\n"
		"       nsprov [-d DIR] [-t MS] [-j N] [-q] [-g] [-n NS_TMPL] "
		"[-H HOST_TMPL] [-p PEER_TMPL]\n"
		"              [-4 V4_POOL] [-6 V6_POOL] [-b UID_BASE]\n"
		"              provision|deprovision|spec NAME INDEX "
		"[NAME INDEX ...]\n"
		"  INDEX: a pool index, or uid=N (index = N - uid base)\n"
		"  templates: %%u user, %%i index, %%U uid; defaults: "
		"namespace %s, host %s, peer %s\n"
		"  pools: IPv4 %s, IPv6 %s; -t per netlink request (ms), "
		"-j namespaces at once\n",
		PROV_DEFAULT_NS_TMPL, PROV_DEFAULT_HOST_TMPL,
		PROV_DEFAULT_PEER_TMPL, PROV_DEFAULT_V4_POOL,
		PROV_DEFAULT_V6_POOL);
	exit(2);
}

/* -g: the longest time between two turns of a 1 ms timer, and the gaps of
 * GAP_STALL_US or more: how many, how long in all. */
#define GAP_STALL_US	10000
static long long gap_last, gap_max, stall_n, stall_sum, blocked_sum;
static long long sched_last = -1;	/* on CPU + waiting for one, us */

/* Time the calling thread spent on a CPU or runnable, in us; -1 if the
 * kernel does not say (no CONFIG_SCHED_INFO). */
static long long sched_us(void)
{
	unsigned long long run, wait;
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu", &run, &wait);
	fclose(f);
	return n == 2 ? (long long)((run + wait) / 1000) : -1;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void gap_cb(evutil_socket_t fd, short what, void *arg)
{
	long long t = now_us(), sched = sched_us();

	if (gap_last && t - gap_last > gap_max)
		gap_max = t - gap_last;
	if (gap_last && t - gap_last >= GAP_STALL_US) {
		stall_n++;
		stall_sum += t - gap_last;
		/* the part of the gap spent neither running nor runnable */
		if (sched >= 0 && sched_last >= 0 &&
		    t - gap_last > sched - sched_last)
			blocked_sum += t - gap_last - (sched - sched_last);
	}
	if (sched < 0)
		blocked_sum = -1;
	gap_last = now_us();
	sched_last = sched_us();
}

static unsigned long num(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "nsprov: bad %s \"%s\"\n", what, s);
		exit(2);
	}
	return v;
}

static void done_cb(void *arg, int err, const char *msg)
{
	struct item *it = arg;

	if (err) {
		printf("%s error: %s\n", it->name, msg ? msg : strerror(-err));
		(*it->failed)++;
	} else if (!it->quiet) {
		printf("%s ok\n", it->name);
	}
	fflush(stdout);
	if (--*it->outstanding == 0)
		event_base_loopbreak(it->base);
}

static int open_names(const char *dir, int n, char **names)
{
	static const struct {
		int err;
		const char *name;
	} errs[] = {
		{ ENOENT, "ENOENT" }, { ELOOP, "ELOOP" }, { EAGAIN, "EAGAIN" },
		{ ENOTTY, "ENOTTY" }, { EACCES, "EACCES" },
	};
	struct netns_id id;
	int i, k, fd, bad = 0;

	for (i = 0; i < n; i++) {
		fd = netns_open(dir ? dir : PROV_DEFAULT_NETNS_DIR, names[i],
				&id);
		if (fd >= 0) {
			close(fd);
			printf("%s ok\n", names[i]);
			continue;
		}
		bad++;
		for (k = 0; k < (int)(sizeof(errs) / sizeof(errs[0])); k++)
			if (errs[k].err == -fd)
				break;
		if (k < (int)(sizeof(errs) / sizeof(errs[0])))
			printf("%s %s\n", names[i], errs[k].name);
		else
			printf("%s errno %d\n", names[i], -fd);
	}
	return bad ? 1 : 0;
}

static void print_spec(const struct prov_spec *s)
{
	char h4[INET_ADDRSTRLEN], n4[INET_ADDRSTRLEN];
	char h6[INET6_ADDRSTRLEN], n6[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET, &s->v4_host, h4, sizeof(h4));
	inet_ntop(AF_INET, &s->v4_ns, n4, sizeof(n4));
	inet_ntop(AF_INET6, &s->v6_host, h6, sizeof(h6));
	inet_ntop(AF_INET6, &s->v6_ns, n6, sizeof(n6));
	printf("ns=%s host_if=%s ns_if=%s v4_host=%s/%u v4_ns=%s/%u "
	       "v6_host=%s/%u v6_ns=%s/%u\n", s->ns, s->host_if, s->ns_if,
	       h4, s->v4_plen, n4, s->v4_plen, h6, s->v6_plen, n6, s->v6_plen);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *cmd;
	struct event_base *base = NULL;
	struct prov *prov = NULL;
	struct prov_pool pool;
	struct prov_spec spec;
	struct item *items = NULL;
	unsigned outstanding = 0, timeout = 0, parallel = 0;
	int opt, i, n, failed = 0, quiet = 0, gaps = 0, err, ret = 2;
	struct event *gap_ev = NULL;
	char why[256], which;

	prov_pool_init(&pool);
	while ((opt = getopt(argc, argv, "d:t:j:qgn:H:p:4:6:b:h")) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 't':
			timeout = (unsigned)num(optarg, "timeout");
			break;
		case 'j':
			parallel = (unsigned)num(optarg, "parallelism");
			break;
		case 'q':
			quiet = 1;
			break;
		case 'g':
			gaps = 1;
			break;
		case 'n':
		case 'H':
		case 'p':
			which = opt == 'n' ? 'n' : opt == 'H' ? 'h' : 'p';
			err = prov_pool_set_tmpl(&pool, which, optarg);
			if (err) {
				fprintf(stderr, "nsprov: template \"%s\": %s\n",
					optarg, prov_pool_strerror(err, which));
				exit(2);
			}
			break;
		case '4':
		case '6':
			err = opt == '4' ? prov_pool_set_v4(&pool, optarg)
					 : prov_pool_set_v6(&pool, optarg);
			if (err) {
				fprintf(stderr,
					"nsprov: bad IPv%c pool \"%s\": %s\n",
					opt, optarg,
					prov_pool_strerror(err, (char)opt));
				exit(2);
			}
			break;
		case 'b':
			pool.uid_base = (uint32_t)num(optarg, "uid base");
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc >= 2 && !strcmp(argv[0], "open"))
		return open_names(dir, argc - 1, argv + 1);
	if (argc < 3 || (argc - 1) % 2)
		usage();
	cmd = argv[0];
	if (strcmp(cmd, "provision") && strcmp(cmd, "deprovision") &&
	    strcmp(cmd, "spec"))
		usage();
	n = (argc - 1) / 2;
	items = calloc((size_t)n, sizeof(*items));
	if (!items)
		goto out;

	if (strcmp(cmd, "spec")) {
		base = event_base_new();
		if (!base) {
			fprintf(stderr, "nsprov: event_base_new failed\n");
			goto out;
		}
		prov = prov_new(base, dir, NULL);
		if (!prov) {
			fprintf(stderr, "nsprov: prov_new: %s\n",
				strerror(errno));
			goto out;
		}
		prov_set_timeout(prov, timeout);
		prov_set_parallel(prov, parallel);
	}

	for (i = 0; i < n; i++) {
		const char *name = argv[1 + 2 * i], *idx = argv[2 + 2 * i];
		uint32_t uid;
		long index;

		if (!strncmp(idx, "uid=", 4)) {
			uid = (uint32_t)num(idx + 4, "uid");
			index = -1;
		} else {
			index = (long)num(idx, "index");
			uid = pool.uid_base + (uint32_t)index;
		}
		err = prov_spec_derive(&pool, name, uid, index, &spec, why,
				       sizeof(why));
		if (err) {
			printf("%s error: %s\n", name, why);
			failed++;
			continue;
		}
		if (!prov) {
			print_spec(&spec);
			continue;
		}
		items[i] = (struct item){ .name = name, .base = base,
					  .outstanding = &outstanding,
					  .failed = &failed, .quiet = quiet };
		err = cmd[0] == 'p' ? prov_provision(prov, &spec, done_cb,
						     &items[i])
				    : prov_deprovision(prov, &spec, done_cb,
						       &items[i]);
		if (err) {
			printf("%s error: %s\n", name, strerror(-err));
			failed++;
			continue;
		}
		outstanding++;
	}
	fflush(stdout);
	if (outstanding && gaps) {
		struct timeval ms = { 0, 1000 };

		gap_ev = event_new(base, -1, EV_PERSIST, gap_cb, NULL);
		if (!gap_ev || event_add(gap_ev, &ms) < 0)
			goto out;
		gap_last = now_us();
		sched_last = sched_us();
	}
	if (outstanding)
		event_base_dispatch(base);
	if (gap_ev)
		fprintf(stderr, "max loop gap: %lld us\nloop stalls: %lld over "
			"%d ms, %lld us in all\nloop blocked: %lld us in "
			"stalls\n", gap_max, stall_n, GAP_STALL_US / 1000,
			stall_sum, blocked_sum < 0 ? -1 : blocked_sum);
	ret = failed ? 1 : 0;
out:
	if (gap_ev)
		event_free(gap_ev);
	prov_free(prov);
	if (base)
		event_base_free(base);
	free(items);
	return ret;
}
