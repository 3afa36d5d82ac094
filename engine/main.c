/* SPDX-License-Identifier: MIT */
/* nsrelayd: relay host services into network namespaces from one loop.
 *
 * Start-up: parse and validate the config (every error reported), raise the
 * descriptor limit, remember the host namespace, become the unprivileged
 * user, then build the listeners and run the one event loop.  SIGHUP
 * re-scans the namespace directory and retries every listener that is not
 * up; SIGTERM and SIGINT close everything and exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "config/config.h"
#include "engine/control.h"
#include "engine/daemon.h"
#include "engine/hosts.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/privs.h"
#include "engine/relay.h"
#include "netns/discover.h"
#include "netns/netns.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/nsrelay/nsrelay.yaml"
#define FD_RESERVE	16	/* log, signals, epoll, netns, ... */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nsrelayd [-c FILE] [-f] [-v] [--check]\n"
		"  -c, --config FILE  service map (default " DEFAULT_CONFIG ")\n"
		"  -f, --foreground   stay in the foreground, log to stderr\n"
		"  -v, --verbose      log every connection\n"
		"  -n, --check        validate the config and exit\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         this text\n");
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	log_info("signal %d: stopping", (int)sig);
	event_base_loopbreak(d->base);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	log_info("SIGHUP: re-scanning namespaces");
	ns_sync(d);
}

static void on_sync(evutil_socket_t fd, short what, void *arg)
{
	ns_sync(arg);
}

static void watch_start(struct daemon *d);

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval zero = { 0, 0 };
	struct daemon *d = arg;
	int r = discover_read(fd);

	if (r < 0)
		log_warnx("reading namespace directory events: %s",
			  strerror(-r));
	if (r != 0)
		evtimer_add(d->sync_ev, &zero);
	if (r == 2) {
		log_warnx("%s went away; watching it again",
			  d->cfg->netns_dir);
		event_free(d->watch_ev);
		d->watch_ev = NULL;
		close(d->watch_fd);
		watch_start(d);
	}
}

/* Watch the namespace directory, so that namespaces added or deleted by any
 * tool are served or let go without a signal. */
static void watch_start(struct daemon *d)
{
	d->watch_fd = discover_open(d->cfg->netns_dir);
	if (d->watch_fd < 0) {
		log_warnx("cannot watch %s: %s; namespaces are re-scanned on "
			  "SIGHUP only", d->cfg->netns_dir,
			  strerror(-d->watch_fd));
		return;
	}
	d->watch_ev = event_new(d->base, d->watch_fd, EV_READ | EV_PERSIST,
				on_watch, d);
	if (!d->watch_ev || event_add(d->watch_ev, NULL) < 0)
		fatalx("cannot watch %s", d->cfg->netns_dir);
}

/* Check the provisioning pool and templates of the config into d->pool;
 * print each problem as FILE:LINE:COL: KEY: message.  0 or -1. */
static int pool_setup(struct daemon *d)
{
	const struct config_provision *p = &d->cfg->provision;
	const struct {
		const char *key, *val;
		const struct config_loc *at;
		char which;	/* template kind, or 4/6 for a pool */
	} item[] = {
		{ "ipv4_pool", p->ipv4_pool, &p->ipv4_pool_at, 4 },
		{ "ipv6_pool", p->ipv6_pool, &p->ipv6_pool_at, 6 },
		{ "namespace", p->ns_template, &p->ns_template_at, 'n' },
		{ "host_interface", p->host_template, &p->host_template_at,
		  'h' },
		{ "namespace_interface", p->peer_template,
		  &p->peer_template_at, 'p' },
	};
	int bad = 0, r;

	prov_pool_init(&d->pool);
	d->pool.uid_base = p->uid_base;
	for (size_t i = 0; i < sizeof(item) / sizeof(item[0]); i++) {
		const char *why;

		if (!item[i].val)
			continue;
		if (item[i].which == 4) {
			r = prov_pool_set_v4(&d->pool, item[i].val);
			why = "expected A.B.C.D/N, N from 1 to 24, host bits 0";
		} else if (item[i].which == 6) {
			r = prov_pool_set_v6(&d->pool, item[i].val);
			why = "expected an IPv6 /48 such as fd75:6272:7370::/48";
		} else {
			r = prov_pool_set_tmpl(&d->pool, item[i].which,
					       item[i].val);
			why = r == -ENAMETOOLONG ? "too long" :
			      "use text with %u (user), %U (uid), %i (index) "
			      "or %%";
		}
		if (r < 0) {
			fprintf(stderr, "%s:%u:%u: provision.%s: bad value "
				"\"%s\": %s\n", d->cfg->path, item[i].at->line,
				item[i].at->col, item[i].key, item[i].val, why);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/* Provision the namespaces of the config's users.  Each result is logged
 * and, once ready, the namespace is served. */
struct start_req {
	struct daemon *d;
	char *user;
	struct prov_spec spec;
};

static void start_done(void *arg, int err, const char *msg)
{
	struct start_req *q = arg;

	if (err) {
		log_warnx("ns %s: provisioning for %s failed: %s", q->spec.ns,
			  q->user, msg ? msg : strerror(-err));
	} else {
		log_info("ns %s: provisioned for %s", q->spec.ns, q->user);
		provisioned_set(q->d, q->user, &q->spec, true);
		ns_sync(q->d);
	}
	free(q->user);
	free(q);
}

static void provision_users(struct daemon *d)
{
	const struct config_provision *p = &d->cfg->provision;
	char why[256];

	for (size_t i = 0; i < p->n_users; i++) {
		struct start_req *q = calloc(1, sizeof(*q));

		if (!q || !(q->user = strdup(p->users[i].name)))
			fatal("provision_users");
		q->d = d;
		if (control_spec(d, q->user, p->users[i].index, &q->spec, why,
				 sizeof(why)) < 0 ||
		    prov_provision(d->prov, &q->spec, start_done, q) < 0) {
			log_warnx("provisioning for %s: %s", q->user, why);
			free(q->user);
			free(q);
		}
	}
}

static long raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		fatal("getrlimit");
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("raising the soft descriptor limit");
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur > (rlim_t)(1L << 30) ? 1L << 30 : (long)rl.rlim_cur;
}

static int load(const char *path, struct config **cfg)
{
	struct config_errors errs = { 0 };

	if (config_load(path, cfg, &errs) == 0)
		return 0;
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	config_errors_clear(&errs);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check", no_argument, NULL, 'n' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG;
	bool foreground = false, verbose = false, check = false;
	struct event_config *evcfg;
	struct event *sigs[3];
	struct daemon d = { 0 };
	unsigned need, up = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:fvnVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'f': foreground = true; break;
		case 'v': verbose = true; break;
		case 'n': check = true; break;
		case 'V': printf("nsrelayd %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nsrelayd: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (load(path, &d.cfg) < 0)
		return 1;
	if (d.cfg->provision.enabled && pool_setup(&d) < 0) {
		config_free(d.cfg);
		return 1;
	}
	if (check) {
		/* a missing user is the host's business, not the file's */
		r = privs_check_user(d.cfg->user);
		if (r == -EPERM) {
			fprintf(stderr, "%s: user: \"%s\" has uid 0: upstreams "
				"would see root\n", path, d.cfg->user);
			config_free(d.cfg);
			return 1;
		}
		if (r < 0)
			fprintf(stderr, "%s: warning: user \"%s\" does not "
				"exist on this host (create it before starting "
				"nsrelayd)\n", path, d.cfg->user);
		printf("%s: ok, %zu services\n", path, d.cfg->n_services);
		config_free(d.cfg);
		return 0;
	}

	log_init(verbose, !foreground);
	signal(SIGPIPE, SIG_IGN);
	/* Relay buffers come and go as 4..64 KiB chains.  Left to itself,
	 * glibc gives the top of the heap back every time 128 KiB are free
	 * there, or maps big chunks with mmap: either way a munmap or brk,
	 * a TLB shootdown and fresh page faults to grow again, measured at
	 * over half of the CPU a bulk transfer costs.  Keep chains on the
	 * heap and keep up to 8 MiB of it. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	d.fd_limit = raise_nofile();
	r = netns_host_init();
	if (r < 0) {
		errno = -r;
		fatal("opening the host network namespace");
	}
	if (mkdir(d.cfg->netns_dir, 0755) < 0 && errno != EEXIST)
		log_warn("creating %s", d.cfg->netns_dir);
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");

	/* epoll's changelist folds the add/del pairs a bufferevent makes
	 * within one loop turn into one epoll_ctl, or none: 14 calls per
	 * relayed connection become 4.  (Unsafe only with dup()ed fds, which
	 * the daemon never makes.) */
	evcfg = event_config_new();
	if (!evcfg || event_config_set_flag(evcfg,
				EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) < 0)
		fatalx("event_config_new failed");
	d.base = event_base_new_with_config(evcfg);
	event_config_free(evcfg);
	if (!d.base)
		fatalx("event_base_new failed");
	TAILQ_INIT(&d.nss);
	TAILQ_INIT(&d.relays);
	TAILQ_INIT(&d.provisioned);
	TAILQ_INIT(&d.clients);
	if (d.cfg->provision.enabled) {
		/* as root: the socket is root's, the netlink socket opened
		 * with every credential */
		r = control_open(&d, d.cfg->provision.control);
		if (r < 0) {
			errno = -r;
			fatal("control socket %s", d.cfg->provision.control);
		}
		d.prov = prov_new(d.base, d.cfg->netns_dir);
		if (!d.prov)
			fatal("starting the provisioner");
		r = provisioned_watch(&d);
		if (r < 0) {
			errno = -r;
			fatal("link monitor");
		}
	}
	privs_drop(d.cfg->user, d.prov != NULL);
	sigs[0] = evsignal_new(d.base, SIGTERM, on_stop, &d);
	sigs[1] = evsignal_new(d.base, SIGINT, on_stop, &d);
	sigs[2] = evsignal_new(d.base, SIGHUP, on_hup, &d);
	for (int i = 0; i < 3; i++)
		if (!sigs[i] || evsignal_add(sigs[i], NULL) < 0)
			fatalx("cannot install signal handlers");

	d.sync_ev = evtimer_new(d.base, on_sync, &d);
	if (!d.sync_ev)
		fatalx("evtimer_new failed");
	watch_start(&d);
	if (d.prov)
		provision_users(&d);
	ns_sync(&d);
	need = ns_count_bindings(&d) + FD_RESERVE;
	if (need > (unsigned long)d.fd_limit)
		fatalx("the config needs %u file descriptors for its "
		       "listeners alone but the limit is %ld: raise it "
		       "(LimitNOFILE= in the unit, ulimit -n), allowing two "
		       "more per connection", need, d.fd_limit);
	{
		struct ns *ns;
		struct binding *b;

		TAILQ_FOREACH(ns, &d.nss, entry)
			TAILQ_FOREACH(b, &ns->bindings, entry)
				up += b->state == BINDING_LISTENING;
	}
	log_info("started: %u of %u listeners up", up, need - FD_RESERVE);
	sd_notifyf(0, "READY=1\nSTATUS=%u of %u listeners up", up,
		   need - FD_RESERVE);

	event_base_dispatch(d.base);

	sd_notify(0, "STOPPING=1");
	control_close(&d);
	provisioned_unwatch(&d);
	prov_free(d.prov);
	provisioned_free(&d);
	relay_close_all(&d);
	ns_free_all(&d);
	if (d.watch_ev) {
		event_free(d.watch_ev);
		close(d.watch_fd);
	}
	event_free(d.sync_ev);
	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_base_free(d.base);
	config_free(d.cfg);
	log_info("stopped");
	return 0;
}
