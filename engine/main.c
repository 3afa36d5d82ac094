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
#include "engine/daemon.h"
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
	privs_drop(d.cfg->user);

	d.base = event_base_new();
	if (!d.base)
		fatalx("event_base_new failed");
	TAILQ_INIT(&d.nss);
	TAILQ_INIT(&d.relays);
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
