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
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "config/config.h"
#include "engine/control.h"
#include "engine/daemon.h"
#include "engine/dgram.h"
#include "engine/dirwatch.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "engine/nstable.h"
#include "engine/privc.h"
#include "engine/privs.h"
#include "priv/sandbox.h"
#include "engine/provisioned.h"
#include "engine/provreq.h"
#include "engine/relay.h"
#include "engine/upstream.h"
#include "netns/netns.h"
#include "netns/provision.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/nsrelay/nsrelay.yaml"
/* Descriptors kept for everything but relayed connections: log, signals,
 * epoll, inotify, netlink, namespace files, the control socket's clients,
 * provisioning: an eighth of the limit, from 16 to 256. */
static unsigned fd_reserve(long limit)
{
	long r = limit / 8;

	return r < 16 ? 16 : r > 256 ? 256 : (unsigned)r;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: nsrelayd [-c FILE] [-f] [-v] [--check]\n"
		"  -c, --config FILE  service map (default " DEFAULT_CONFIG ")\n"
		"  -f, --foreground   stay in the foreground, log to stderr\n"
		"  -v, --verbose      log every connection and provisioning call\n"
		"  -n, --check        validate the config and exit\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         this text\n");
}

/* One summary line for systemctl status, refreshed every STATUS_S. */
#define STATUS_S	10

static void notify_status(struct daemon *d)
{
	sd_notifyf(0, "STATUS=%u of %u listeners up, %llu connections%s",
		   nstable_listening_count(d->nst),
		   nstable_listener_count(d->nst),
		   (unsigned long long)listener_set_conn_count(d->ls),
		   d->stopping ? ", stopping" : "");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	notify_status(arg);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

/* Draining at shutdown: stop once every connection ended, or at the end
 * of the grace period. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval now;

	event_base_gettimeofday_cached(d->base, &now);
	if (listener_set_conn_count(d->ls) == 0 ||
	    timercmp(&now, &d->stop_by, >=)) {
		if (listener_set_conn_count(d->ls))
			log_info("grace period over: closing %llu connections",
				 (unsigned long long)
				 listener_set_conn_count(d->ls));
		event_base_loopbreak(d->base);
	}
}

/* SIGTERM, SIGINT: stop accepting (listeners and the control socket
 * close), let live connections finish for up to the grace period, then
 * close the rest.  A second signal stops at once. */
static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	static const struct timeval poll = { 0, 50 * 1000 };
	struct daemon *d = arg;
	uint64_t live = listener_set_conn_count(d->ls);
	struct timeval grace;

	if (d->stopping || !live || !d->grace_ms) {
		log_info("signal %d: stopping", (int)sig);
		event_base_loopbreak(d->base);
		return;
	}
	d->stopping = true;
	sd_notify(0, "STOPPING=1");
	log_info("signal %d: stopping; %llu connections may finish within "
		 "%llu ms", (int)sig, (unsigned long long)live,
		 (unsigned long long)d->grace_ms);
	control_close(d->ctl);
	d->ctl = NULL;
	nstable_close_all(d->nst);
	event_base_gettimeofday_cached(d->base, &d->stop_by);
	grace.tv_sec = (time_t)(d->grace_ms / 1000);
	grace.tv_usec = (suseconds_t)(d->grace_ms % 1000) * 1000;
	timeradd(&d->stop_by, &grace, &d->stop_by);
	d->drain = event_new(d->base, -1, EV_PERSIST, on_drain, d);
	if (!d->drain || event_add(d->drain, &poll) < 0)
		event_base_loopbreak(d->base);
	notify_status(d);
}

static void start_done(void *arg, int err, const char *msg, const char *user,
		       const char *ns);

/* Re-read the config: parse and check it whole first; on any error keep
 * serving the old one, untouched.  Otherwise apply the difference (see
 * nstable_reload()) and provision users the new config adds.  Every error
 * is logged and appended to ERRS (may be NULL).  0 or -1.  The control
 * socket's `reload` calls it through the pointer it was given. */
static int daemon_reload(struct daemon *d, struct config_errors *errs)
{
	struct config_errors mine = { 0 };
	struct config *cfg, *old = d->cfg;
	struct config_diff diff;
	bool have_diff = false;
	const char *key;
	struct timespec ts;
	int r = -1;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL +
		   (unsigned long long)ts.tv_nsec / 1000);
	if (!errs)
		errs = &mine;
	if (config_load(d->cfg_path, &cfg, errs) < 0) {
		for (size_t i = 0; i < errs->n; i++)
			log_warnx("reload: %s", errs->msg[i]);
		log_warnx("reload failed: %zu errors; the running config "
			  "(generation %llu) stays", errs->n,
			  (unsigned long long)d->generation);
		goto out;
	}
	key = config_fixed_key(old, cfg);
	if (key) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s: %s cannot change on reload; "
			 "restart nsrelayd to change it", cfg->path, key);
		log_warnx("reload failed: %s", msg);
		config_free(cfg);
		if (errs) {
			char **v = realloc(errs->msg, (errs->n + 1) *
					   sizeof(*v));

			if (v) {
				errs->msg = v;
				errs->msg[errs->n] = strdup(msg);
				if (errs->msg[errs->n])
					errs->n++;
			}
		}
		goto out;
	}
	if (config_diff(old, cfg, &diff) == 0) {
		log_info("reload: services +%zu -%zu ~%zu, namespaces +%zu -%zu, "
			 "provisioned users +%zu -%zu", diff.n_services_added,
			 diff.n_services_removed, diff.n_services_changed,
			 diff.n_namespaces_added, diff.n_namespaces_removed,
			 diff.n_users_added, diff.n_users_removed);
		have_diff = true;
	}
	/* servers before listeners: a listener may accept at once */
	if (upstream_set_config(d->ups, cfg) < 0)
		log_warnx("reload: servers: out of memory; the services' "
			  "servers stay as they were");
	nstable_reload(d->nst, cfg);
	/* live connections follow their service's new timeouts now, not
	 * at their next byte */
	relay_set_retime(listener_set_relays(d->ls));
	dgram_set_retime(listener_set_dgrams(d->ls));
	if (d->provd) {
		provisioned_set_config(d->provd, cfg);
		provreq_set_config(d->pq, cfg);
	}
	d->cfg = cfg;
	d->grace_ms = cfg->shutdown_grace_ms;
	config_free(old);
	d->generation++;
	metrics_open(d, &d->metrics);	/* a failure is logged */
	/* users that left provision.users: kept, or removed by policy */
	if (d->pq && have_diff &&
	    cfg->provision.removed == CONFIG_REMOVED_DEPROVISION)
		for (size_t i = 0; i < diff.n_users_removed; i++)
			if (!provreq_submit(d->pq, diff.users_removed[i], true,
					    start_done, NULL))
				log_warnx("deprovisioning %s: out of memory",
					  diff.users_removed[i]);
	if (d->pq)
		for (size_t i = 0; i < cfg->provision.n_users; i++)
			if (!provreq_submit(d->pq, cfg->provision.users[i].name,
					    false, start_done, NULL))
				log_warnx("provisioning for %s: out of memory",
					  cfg->provision.users[i].name);
	log_info("reloaded %s: generation %llu, %u of %u listeners up",
		 cfg->path, (unsigned long long)d->generation,
		 nstable_listening_count(d->nst),
		 nstable_listener_count(d->nst));
	r = 0;
out:
	if (have_diff)
		config_diff_free(&diff);
	d->reload_ok = r == 0;
	event_base_gettimeofday_cached(d->base, &d->reloaded);
	sd_notify(0, "READY=1");
	notify_status(d);
	if (errs == &mine)
		config_errors_clear(&mine);
	return r;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	log_info("SIGHUP: reloading %s", d->cfg->path);
	daemon_reload(d, NULL);
}

static void on_dir_change(void *arg, char *const *names, size_t n)
{
	struct daemon *d = arg;

	if (names)
		nstable_sync_names(d->nst, names, n);
	else
		nstable_sync(d->nst);
}

static void on_provisioned(void *arg, const char *ns, bool present)
{
	struct daemon *d = arg;

	nstable_provisioned(d->nst, ns, present);
}

/* A deprovision answered when the namespace's file went (prov_set_early)
 * whose veth then had to be deleted by hand, and could not be. */
static void on_late(void *arg, const char *ns, const char *msg)
{
	log_warnx("ns %s: deprovisioned, but %s", ns, msg);
}

/* The privileged helper is gone (it died: it never exits on its own
 * while the engine runs): no half-alive daemon. */
static void helper_gone(void *arg)
{
	(void)arg;
	fatalx("the privileged helper exited; stopping (systemd restarts the "
	       "daemon)");
}

/* Provision at start: the config's users, and those provisioned on request
 * before a restart (the state file).  Each result is logged by provreq. */
static void start_done(void *arg, int err, const char *msg, const char *user,
		       const char *ns)
{
}

static void provision_user(void *arg, const char *user)
{
	struct daemon *d = arg;

	if (!provreq_submit(d->pq, user, false, start_done, NULL))
		log_warnx("provisioning for %s: out of memory", user);
}

static void provision_users(struct daemon *d)
{
	const struct config_provision *p = &d->cfg->provision;
	int r;

	for (size_t i = 0; i < p->n_users; i++)
		provision_user(d, p->users[i].name);
	r = provisioned_recall(d->provd, provision_user, d);
	if (r < 0 && r != -ENOENT)
		log_warnx("reading the provisioned users: %s", strerror(-r));
}

/* Listeners the config needs for the namespaces it names (those found in
 * the directory come later and are checked one by one). */
static unsigned listeners_named(const struct config *cfg)
{
	unsigned n = 0;

	for (size_t i = 0; i < cfg->n_namespaces; i++)
		for (size_t j = 0; j < cfg->n_services; j++)
			if (config_service_in_ns(&cfg->services[j],
						 cfg->namespaces[i]))
				n += cfg->services[j].n_listen;
	return n;
}

/* The PROXY header's owner of a namespace (listener_set_owner). */
static const struct prov_spec *owner_of(void *arg, const char *ns,
					const char **user)
{
	struct daemon *d = arg;

	return d->provd ? provisioned_find_ns(d->provd, ns, user) : NULL;
}

static int uid_of(const char *name, uint32_t *uid, void *arg)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (!pw)
		return errno ? -errno : -ENOENT;
	*uid = pw->pw_uid;
	return 0;
}

/* Namespaces --check cannot see in the file: with all: true, those in the
 * directory it would serve besides the listed ones, and the provisioned
 * users (a guess from the config: users listed). */
static size_t extra_namespaces(const struct config *cfg)
{
	size_t n = cfg->provision.n_users;
	char **names;
	int k;

	if (!cfg->ns_all)
		return n;
	k = netns_list(cfg->netns_dir, &names);
	for (int i = 0; i < k; i++) {
		bool listed = false;

		for (size_t j = 0; j < cfg->n_namespaces; j++)
			listed |= !strcmp(cfg->namespaces[j], names[i]);
		n += !listed && config_serves_ns(cfg, names[i]);
	}
	if (k > 0)
		netns_names_free(names, k);
	return n;
}

/* The descriptors listeners may take: the hard limit (the daemon raises
 * the soft one to it) less the reserve. */
static long hard_nofile(void)
{
	struct rlimit rl;
	long lim;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1L << 20;
	lim = rl.rlim_max > (rlim_t)(1L << 30) ? 1L << 30 : (long)rl.rlim_max;
	return lim - (long)fd_reserve(lim);
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
	struct dirwatch *watch;
	struct event *tick, *wd = NULL;
	uint64_t wd_usec;
	unsigned need, up;
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
	if (check || d.cfg->provision.enabled) {
		/* before the loop runs: NSS may take its time here */
		struct config_errors errs = { 0 };
		int bad = config_check_users(d.cfg, uid_of, NULL, &errs);

		if (check && bad >= 0)
			bad += config_check_listeners(d.cfg,
						      extra_namespaces(d.cfg),
						      (uint64_t)hard_nofile(),
						      &errs);
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		config_errors_clear(&errs);
		if (bad) {
			if (bad < 0)
				fprintf(stderr, "%s: out of memory\n", path);
			config_free(d.cfg);
			return 1;
		}
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

	/* reloads read the same file after daemon() went to / */
	d.cfg_path = realpath(path, NULL);
	if (!d.cfg_path)
		fatal("%s", path);
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
	d.grace_ms = d.cfg->shutdown_grace_ms;
	need = listeners_named(d.cfg) + fd_reserve(d.fd_limit);
	if (need > (unsigned long)d.fd_limit)
		fatalx("the config needs %u file descriptors for its "
		       "listeners alone but the limit is %ld: raise it "
		       "(LimitNOFILE= in the unit, ulimit -n), allowing two "
		       "more per connection", need, d.fd_limit);
	if (mkdir(d.cfg->netns_dir, 0755) < 0 && errno != EEXIST)
		log_warn("creating %s", d.cfg->netns_dir);
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");
	/* the privileged half, forked while this process is still root
	 * and has one thread; what needs privilege is its from now on */
	d.priv = privc_start(d.cfg, &r);
	if (!d.priv) {
		errno = -r;
		fatal("starting the privileged helper");
	}

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
	d.ls = listener_set_new(d.base, d.fd_limit, fd_reserve(d.fd_limit));
	d.nst = d.ls ? nstable_new(d.base, d.cfg, d.ls, d.priv) : NULL;
	d.ups = d.nst ? upstream_set_new(d.base) : NULL;
	if (!d.ups || upstream_set_config(d.ups, d.cfg) < 0)
		fatalx("out of memory");
	relay_set_upstreams(listener_set_relays(d.ls), d.ups);
	dgram_set_upstreams(listener_set_dgrams(d.ls), d.ups);
	/* as root: the socket is root's, given its group */
	d.ctl = control_open(&d, d.cfg->control.path, daemon_reload, &r);
	if (!d.ctl) {
		errno = -r;
		fatal("control socket %s", d.cfg->control.path);
	}
	/* as root too: a port below 1024 may be asked for */
	if (metrics_open(&d, &d.metrics) < 0)
		fatalx("metrics: cannot listen on %s",
		       d.cfg->metrics.listen.text);
	if (d.cfg->provision.enabled) {
		char *state = config_state_path(d.cfg->control.path);

		/* its privileged calls are the helper's */
		d.prov = prov_new(d.base, d.cfg->netns_dir,
				  privc_prov_ops(d.priv));
		if (!d.prov)
			fatal("starting the provisioner");
		prov_set_early(d.prov, on_late, &d);
		d.provd = provisioned_new(d.base, d.cfg, d.prov, d.priv, state,
					  on_provisioned, &d);
		d.pq = d.provd ? provreq_new(d.base, d.cfg, d.prov, d.provd) :
				 NULL;
		free(state);
		if (!d.pq)
			fatalx("out of memory");
		listener_set_owner(d.ls, owner_of, &d);
		r = provisioned_watch(d.provd);
		if (r < 0) {
			errno = -r;
			fatal("link monitor");
		}
	}
	privs_drop(d.cfg->user);
	/* no capability, and the seccomp list, before the first client */
	r = sandbox_engine();
	if (r < 0) {
		errno = -r;
		fatal("dropping capabilities and installing the seccomp list");
	}
	if (privc_watch(d.priv, d.base, helper_gone, &d) < 0)
		fatalx("out of memory");
	sigs[0] = evsignal_new(d.base, SIGTERM, on_stop, &d);
	sigs[1] = evsignal_new(d.base, SIGINT, on_stop, &d);
	sigs[2] = evsignal_new(d.base, SIGHUP, on_hup, &d);
	for (int i = 0; i < 3; i++)
		if (!sigs[i] || evsignal_add(sigs[i], NULL) < 0)
			fatalx("cannot install signal handlers");

	watch = dirwatch_new(d.base, d.cfg->netns_dir, on_dir_change, &d);
	if (!watch)
		fatalx("out of memory");
	if (d.pq)
		provision_users(&d);
	nstable_sync(d.nst);
	up = nstable_listening_count(d.nst);
	need = nstable_listener_count(d.nst);
	d.generation = 1;
	gettimeofday(&d.started, NULL);
	log_info("started: %u of %u listeners up", up, need);
	sd_notify(0, "READY=1");
	notify_status(&d);
	tick = event_new(d.base, -1, EV_PERSIST, on_tick, &d);
	if (!tick || event_add(tick, &(struct timeval){ STATUS_S, 0 }) < 0)
		fatalx("out of memory");
	if (sd_watchdog_enabled(0, &wd_usec) > 0) {
		/* twice per period, as sd_watchdog_enabled(3) advises */
		struct timeval half = {
			(time_t)(wd_usec / 2 / 1000000),
			(suseconds_t)(wd_usec / 2 % 1000000),
		};

		wd = event_new(d.base, -1, EV_PERSIST, on_watchdog, &d);
		if (!wd || event_add(wd, &half) < 0)
			fatalx("out of memory");
		sd_notify(0, "WATCHDOG=1");
	}

	event_base_dispatch(d.base);

	if (!d.stopping)
		sd_notify(0, "STOPPING=1");
	if (wd)
		event_free(wd);
	event_free(tick);
	if (d.drain)
		event_free(d.drain);
	control_close(d.ctl);
	metrics_close(d.metrics);
	prov_free(d.prov);
	provreq_free(d.pq);
	provisioned_free(d.provd);
	nstable_free(d.nst);
	listener_set_free(d.ls);	/* closes live connections */
	upstream_set_free(d.ups);	/* after them: they hold servers */
	privc_free(d.priv);		/* the helper exits */
	dirwatch_free(watch);
	for (int i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_base_free(d.base);
	config_free(d.cfg);
	free(d.cfg_path);
	log_info("stopped");
	return 0;
}
