/* SPDX-License-Identifier: MIT */
/* control: the daemon's control socket: status, stats, reload, and
 * provisioning on request.
 *
 * Protocol (ctlproto.c parses it; documented for users in nsrelayctl(8)):
 * one command per line, answers in the order of the commands, each answer
 * one line unless said otherwise:
 *
 *   status             ->  one line of JSON: the daemon (version, pid,
 *                          start, uptime, config path and generation, last
 *                          reload, counts)
 *   stats [NAMESPACE]  ->  one line of JSON: the same and "namespaces", an
 *                          array of every namespace served (or that one):
 *                          services, listeners, counters, veth (stats.c);
 *                          "error: no such namespace: NAME" if not served
 *   reload             ->  "ok generation N", or "error: N errors" followed
 *                          by N lines, one per problem (FILE:LINE:COL: ...),
 *                          and an empty line
 *   provision USER     ->  "ok USER NAMESPACE" once the namespace is ready
 *                          and every listener of it is open; when some
 *                          could not be opened (they are retried),
 *                          "ok USER NAMESPACE listeners UP/TOTAL: SERVICE
 *                          ADDRESS: reason; ..." names the first
 *                          REASONS_SHOWN of them, then "and N more" (in
 *                          REASONS_BYTES at most: the answer stays within
 *                          the PAM module's 1,023 bytes, as old modules
 *                          read no more).  Or "error: what went wrong".
 *   deprovision USER   ->  "ok USER NAMESPACE" or "error: ..."
 *
 * A JSON answer starts with '{', an error with "error: ".
 *
 * Who may do what is decided by the peer's credentials (SO_PEERCRED, taken
 * when it connects): uid 0 may do everything; reload, provision and
 * deprovision are root's only; status and stats are also open to members
 * of control.group: the peer's gid, or one of its supplementary groups
 * (SO_PEERGROUPS: the kernel's list of the peer process, so no NSS look-up
 * runs on the loop).  Others are answered "error: permission denied" (the
 * socket's mode and group keep them out first).  The group's name is
 * resolved when the socket is opened, at start-up before the loop runs;
 * control.* can only change with a restart.
 *
 * Clients and answers are bounded, so that no client can make the daemon
 * buffer without limit or hold a slot for ever:
 *  - a client has one request at a time; while it is in flight nothing
 *    more is read from it (the kernel's buffer fills, the client waits);
 *  - lines of at most CTLPROTO_LINE_MAX bytes: a longer one is answered
 *    "error: line too long" and the client is closed;
 *  - reading stops while more than OUT_MAX bytes of answers wait for a
 *    client that does not read them; a JSON answer is written a piece of
 *    OUT_MAX at a time, the next once the client has read the last (a
 *    stats answer for thousands of namespaces is megabytes; it never sits
 *    whole in memory);
 *  - a client whose answers do not move for IO_TIMEOUT seconds, or that is
 *    silent that long between commands, is dropped;
 *  - every client is a descriptor counted in the relay's budget
 *    (listener_set_fd_take).
 *
 * Slots: root's clients and the others' are counted apart, because a
 * login must never depend on what the others do.  The PAM module asks as
 * root, and a login denied is a user locked out (fail=closed).
 *  - Others (members of control.group) have CONTROL_CLIENTS slots, and no
 *    descriptor of the reserve; the next one is told "error: too many
 *    clients" and closed, as it is when taking its descriptor would
 *    leave only the reserve.  So the group can hold its 64 clients idle,
 *    or find the budget spent by relayed connections, and logins go on.
 *  - Root has ROOT_CLIENTS slots of its own, which may use the reserve of
 *    descriptors (kept for everything but relayed connections).  Root is
 *    never refused: when its slots are all taken the socket stops
 *    accepting, clients wait in the kernel's backlog (connect() fails
 *    with EAGAIN once that is full too, and the module retries), and
 *    accepting resumes as soon as a slot frees.  A login waits at most
 *    its own timeout.  A root client that holds a slot idle delays the
 *    others at most IO_TIMEOUT; root can stop the daemon anyway, so what
 *    is bounded here is a runaway script of root's, not an attacker.
 *    256 slots serve a burst of 256 first logins at once, the rest a
 *    moment later, and cost a few hundred KiB while idle.
 * A descriptor shortage (accept() failing with EMFILE) also stops
 * accepting: the socket pauses with the relay listeners, and resumes with
 * them.
 *
 * The socket is made with umask 0177 (never reachable by others, not even
 * for a moment), then given control.mode (0600 by default) and group.
 * control.mode never has bits for others (config_mode_why() refuses
 * them, and the chmod here masks them), which is what the PAM module
 * checks: a root-owned socket whose group may read and write.
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config/config.h"
#include "engine/control.h"
#include "engine/ctlproto.h"
#include "engine/daemon.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/nstable.h"
#include "engine/provreq.h"
#include "engine/stats.h"

#define CONTROL_CLIENTS		64	/* at once, of others than root */
#define ROOT_CLIENTS		256	/* at once, of root (logins) */
#define BACKLOG			ROOT_CLIENTS
#define IO_TIMEOUT		30	/* seconds */
#define REASONS_SHOWN		3	/* listeners named in an "ok" */
#define REASONS_BYTES		400	/* ... in at most this */
#define OUT_MAX			(64 * 1024)
#define PEER_GROUPS_MAX		65536	/* NGROUPS_MAX */

struct client {
	TAILQ_ENTRY(client) entry;
	struct control *ctl;
	struct bufferevent *bev;
	struct provreq_waiter *w;	/* the request being answered */
	struct stats_walk *walk;	/* or the JSON being written */
	bool walk_ready;		/* ... which may be stepped */
	bool done;			/* EOF or refused: close when answered */
	bool root, reader;		/* may change things; may read */
};

struct control {
	struct daemon *d;
	control_reload_fn reload;	/* main.c's */
	struct evconnlistener *lev;
	struct listener_watch *watch;	/* paused under a shortage */
	struct stats *stats;
	TAILQ_HEAD(, client) clients;
	unsigned n;			/* others' clients */
	unsigned n_root;		/* root's */
	bool short_paused;		/* a descriptor shortage */
	bool accepting;			/* evconnlistener enabled */
	bool have_gid;			/* control.group */
	gid_t gid;
};

static bool busy(const struct client *c)
{
	return c->w || c->walk;
}

/* Accept while there is no shortage and root has a slot free; else leave
 * clients in the kernel's backlog. */
static void control_update(struct control *ctl)
{
	bool on = !ctl->short_paused && ctl->n_root < ROOT_CLIENTS;

	if (on == ctl->accepting)
		return;
	if (on)
		evconnlistener_enable(ctl->lev);
	else
		evconnlistener_disable(ctl->lev);
	ctl->accepting = on;
}

static void client_free(struct client *c)
{
	struct control *ctl = c->ctl;

	if (c->w)
		provreq_cancel(c->w);
	stats_walk_free(c->walk);
	TAILQ_REMOVE(&ctl->clients, c, entry);
	if (c->root)
		ctl->n_root--;
	else
		ctl->n--;
	listener_set_fd_put(ctl->d->ls, 1);
	bufferevent_free(c->bev);
	free(c);
	control_update(ctl);
}

static void client_reply(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void client_reply(struct client *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
}

static void client_next(struct client *c);

/* How much of WHY (nstable_listeners(): one "SERVICE ADDRESS: reason"
 * per listener not open, "; " between them; names and addresses hold no
 * ';') an answer names: the first REASONS_SHOWN reasons whole, in
 * REASONS_BYTES.  The length to keep; *SHOWN the reasons in it. */
static size_t reasons_cut(const char *why, unsigned *shown)
{
	const char *p = why, *end;
	size_t keep = 0, len;

	*shown = 0;
	while (*p && *shown < REASONS_SHOWN) {
		end = strstr(p, "; ");
		len = end ? (size_t)(end - why) : strlen(why);
		if (len > REASONS_BYTES)
			break;
		keep = len;
		++*shown;
		if (!end)
			break;
		p = end + 2;
	}
	return keep;
}

static void request_done(void *arg, int err, const char *msg,
			 const char *user, const char *ns)
{
	struct client *c = arg;
	struct daemon *d = c->ctl->d;
	char why[1024], rest[48] = "";
	unsigned up, total, shown, more;
	size_t keep;

	c->w = NULL;
	if (err) {
		client_reply(c, "error: %s", msg ? msg : strerror(-err));
	} else if (nstable_listeners(d->nst, ns, &up, &total, why,
				     sizeof(why)) < 0 || up == total) {
		client_reply(c, "ok %s %s", user, ns);
	} else {
		/* one reason per listener not up: the rest are counted */
		keep = reasons_cut(why, &shown);
		more = total - up - shown;
		if (more)
			snprintf(rest, sizeof(rest), shown ? "; and %u more" :
				 "%u not open", more);
		client_reply(c, "ok %s %s listeners %u/%u: %.*s%s", user, ns,
			     up, total, (int)keep, why, rest);
	}
	client_next(c);
}

/* Write the next piece of the JSON answer; at its end, the newline, and
 * the next command. */
static void client_walk(struct client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int r;

	if (!c->walk || !c->walk_ready || evbuffer_get_length(out) >= OUT_MAX)
		return;
	r = stats_walk_step(c->walk, out, OUT_MAX);
	if (r == 0)
		return;		/* more once this is read */
	stats_walk_free(c->walk);
	c->walk = NULL;
	if (r < 0) {
		/* half an answer was sent: end it so the client knows */
		evbuffer_add_printf(out, "\nerror: out of memory\n");
		c->done = true;
	} else {
		evbuffer_add(out, "\n", 1);
	}
	client_next(c);
}

static void walk_ready(void *arg)
{
	struct client *c = arg;

	c->walk_ready = true;
	client_walk(c);
}

/* A line safe to send as one line: control bytes become '?'. */
static void reply_line(struct client *c, const char *msg)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	for (const char *p = msg; *p; p++)
		evbuffer_add(out, (unsigned char)*p < 0x20 || *p == 0x7f ?
			     "?" : p, 1);
	evbuffer_add(out, "\n", 1);
}

static void client_reload(struct client *c)
{
	struct daemon *d = c->ctl->d;
	struct config_errors errs = { 0 };

	if (c->ctl->reload(d, &errs) == 0) {
		client_reply(c, "ok generation %llu",
			     (unsigned long long)d->generation);
	} else {
		client_reply(c, "error: %zu errors", errs.n);
		for (size_t i = 0; i < errs.n; i++)
			reply_line(c, errs.msg[i]);
		client_reply(c, "%s", "");
	}
	config_errors_clear(&errs);
}

static void client_command(struct client *c, const char *line, size_t len)
{
	struct daemon *d = c->ctl->d;
	struct ctlproto_req req;
	char why[128];
	int err;

	if (ctlproto_parse(line, len, &req, why, sizeof(why)) < 0) {
		client_reply(c, "error: %s", why);
		return;
	}
	if (ctlproto_verb_mutates(req.verb) ? !c->root : !c->reader) {
		client_reply(c, "error: permission denied");
		return;
	}
	switch (req.verb) {
	case CTLPROTO_STATUS:
	case CTLPROTO_STATS:
		c->walk_ready = false;
		c->walk = stats_walk_new(c->ctl->stats, req.verb == CTLPROTO_STATUS ?
					 STATS_STATUS : STATS_JSON,
					 req.user[0] ? req.user : NULL,
					 walk_ready, c, &err);
		if (!c->walk && err == -ENOENT)
			client_reply(c, "error: no such namespace: %s",
				     req.user);
		else if (!c->walk)
			client_reply(c, "error: %s", strerror(-err));
		return;
	case CTLPROTO_RELOAD:
		client_reload(c);
		return;
	case CTLPROTO_PROVISION:
	case CTLPROTO_DEPROVISION:
		break;
	}
	if (!d->pq) {
		client_reply(c, "error: provisioning is not configured");
		return;
	}
	c->w = provreq_submit(d->pq, req.user,
			      req.verb == CTLPROTO_DEPROVISION, request_done,
			      c);
	if (!c->w)
		client_reply(c, "error: out of memory");
}

/* Answer the next complete line, unless a request is in flight or answers
 * pile up; once the client is done and everything is answered, close
 * after the last byte. */
static void client_next(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_ptr eol;
	size_t len;
	char *line;

	while (!busy(c) && evbuffer_get_length(out) < OUT_MAX) {
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			len = evbuffer_get_length(in);
			if (len > CTLPROTO_LINE_MAX) {
				client_reply(c, "error: line too long");
				c->done = true;
				break;
			}
			if (!c->done || !len)
				break;
			eol.pos = (ssize_t)len;	/* last line, no newline */
		}
		len = (size_t)eol.pos;
		if (len > CTLPROTO_LINE_MAX) {
			client_reply(c, "error: line too long");
			c->done = true;
			break;
		}
		line = (char *)evbuffer_pullup(in, (ssize_t)len);
		if (!line && len) {
			client_reply(c, "error: out of memory");
			c->done = true;
			break;
		}
		client_command(c, line, len);
		evbuffer_drain(in, len + (evbuffer_get_length(in) > len));
	}
	if (c->done && !busy(c)) {
		evbuffer_drain(in, evbuffer_get_length(in));
		bufferevent_disable(c->bev, EV_READ);
		if (!evbuffer_get_length(out))
			client_free(c);
		/* else client_written() closes it once flushed */
		return;
	}
	/* read only what the next command needs */
	if (busy(c) || evbuffer_get_length(out) >= OUT_MAX)
		bufferevent_disable(c->bev, EV_READ);
	else if (!c->done)
		bufferevent_enable(c->bev, EV_READ);
}

static void client_read(struct bufferevent *bev, void *arg)
{
	client_next(arg);
}

static void client_written(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (c->done && !busy(c))
		client_free(c);
	else if (c->walk)
		client_walk(c);
	else
		client_next(c);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;

	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) &&
	    !(what & BEV_EVENT_ERROR)) {
		/* half-closed after its commands: answer them, then close */
		c->done = true;
		client_next(c);
		return;
	}
	/* error, or a timeout: silent too long, or answers not read */
	client_free(c);
}

/* Is the peer on FD a member of GID (its gid or a supplementary group)? */
static bool peer_in_group(int fd, gid_t peer_gid, gid_t gid)
{
	gid_t small[64], *g = small;
	socklen_t len = sizeof(small);
	bool in = peer_gid == gid;

	if (in)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		if (errno != ERANGE || len > PEER_GROUPS_MAX * sizeof(gid_t) ||
		    !(g = malloc(len)))
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
			len = 0;
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (g[i] == gid)
			in = true;
	if (g != small)
		free(g);
	return in;
}

static void control_accept(struct evconnlistener *lev, evutil_socket_t fd,
			   struct sockaddr *sa, int len, void *arg)
{
	static const char busy_msg[] = "error: too many clients\n";
	struct control *ctl = arg;
	struct timeval tmo = { IO_TIMEOUT, 0 };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct client *c;
	bool known, root;

	known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0;
	root = known && cred.uid == 0;
	/* root's count was checked before accepting (control_update); the
	 * reserve is root's to use */
	if (!root && (ctl->n >= CONTROL_CLIENTS ||
		      !listener_set_fd_take(ctl->d->ls, 1, false))) {
		/* a fresh socket's buffer takes this whole */
		if (write(fd, busy_msg, sizeof(busy_msg) - 1) < 0)
			log_debug("control: refusing a client: %s",
				  strerror(errno));
		close(fd);
		return;
	}
	if (root)
		listener_set_fd_take(ctl->d->ls, 1, true);
	c = calloc(1, sizeof(*c));
	if (!c || !(c->bev = bufferevent_socket_new(ctl->d->base, fd,
						     BEV_OPT_CLOSE_ON_FREE))) {
		free(c);
		close(fd);
		listener_set_fd_put(ctl->d->ls, 1);
		return;
	}
	c->root = root;
	c->reader = root || (known && ctl->have_gid &&
			     peer_in_group(fd, cred.gid, ctl->gid));
	c->ctl = ctl;
	TAILQ_INSERT_TAIL(&ctl->clients, c, entry);
	if (root)
		ctl->n_root++;
	else
		ctl->n++;
	control_update(ctl);
	bufferevent_setcb(c->bev, client_read, client_written, client_event,
			  c);
	/* the read timeout runs only while reading is enabled: between
	 * commands; the write timeout while answers wait */
	bufferevent_set_timeouts(c->bev, &tmo, &tmo);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CTLPROTO_LINE_MAX + 2);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void control_error(struct evconnlistener *lev, void *arg)
{
	struct control *ctl = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
		listener_set_shortage(ctl->d->ls, err);
	else
		log_warnx("control socket: accept: %s", strerror(err));
}

static void control_paused(void *arg, bool paused)
{
	struct control *ctl = arg;

	ctl->short_paused = paused;
	control_update(ctl);
}

/* control.group: a name, or a number.  NSS may block: this runs at
 * start-up, before the loop.  0 or -errno. */
static int resolve_group(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	char *buf = NULL, *end;
	size_t len = 1024;
	unsigned long n;
	int r;

	errno = 0;
	n = strtoul(name, &end, 10);
	if (*name && !*end && errno == 0 && n < (gid_t)-1) {
		*gid = (gid_t)n;
		return 0;
	}
	do {
		char *nb = realloc(buf, len *= 2);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		r = getgrnam_r(name, &gr, buf, len, &res);
	} while (r == ERANGE && len < (1 << 20));
	if (res)
		*gid = res->gr_gid;
	free(buf);
	return res ? 0 : r ? -r : -ENOENT;
}

struct control *control_open(struct daemon *d, const char *path,
			     control_reload_fn reload, int *err)
{
	const struct config_control *cc = &d->cfg->control;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)], *slash;
	struct control *ctl;
	mode_t old;
	int fd = -1, r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		*err = -ENOMEM;
		return NULL;
	}
	TAILQ_INIT(&ctl->clients);
	ctl->d = d;
	ctl->reload = reload;
	ctl->stats = stats_new(d);
	if (!ctl->stats) {
		free(ctl);
		*err = -ENOMEM;
		return NULL;
	}
	if (cc->group) {
		r = resolve_group(cc->group, &ctl->gid);
		if (r < 0) {
			log_warnx("control.group: \"%s\": %s", cc->group,
				  r == -ENOENT ? "no such group" :
				  strerror(-r));
			stats_free(ctl->stats);
			free(ctl);
			*err = r;
			return NULL;
		}
		ctl->have_gid = true;
	}
	strcpy(sun.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			goto fail;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (unlink(path) < 0 && errno != ENOENT)
		goto fail;
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	/* the group first, then the mode that lets it in */
	if (r < 0 || (ctl->have_gid && chown(path, (uid_t)-1, ctl->gid) < 0) ||
	    chmod(path, cc->mode ? cc->mode & 0660 : 0600) < 0 ||
	    listen(fd, BACKLOG) < 0)
		goto fail;
	ctl->lev = evconnlistener_new(d->base, control_accept, ctl,
				      LEV_OPT_CLOSE_ON_FREE |
				      LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!ctl->lev) {
		errno = ENOMEM;
		goto fail;
	}
	evconnlistener_set_error_cb(ctl->lev, control_error);
	ctl->accepting = true;
	ctl->watch = listener_set_watch(d->ls, control_paused, ctl);
	if (!ctl->watch) {
		evconnlistener_free(ctl->lev);
		stats_free(ctl->stats);
		free(ctl);
		*err = -ENOMEM;
		return NULL;
	}
	return ctl;
fail:
	*err = -errno;
	if (fd >= 0)
		close(fd);
	stats_free(ctl->stats);
	free(ctl);
	return NULL;
}

void control_close(struct control *ctl)
{
	struct client *c;

	if (!ctl)
		return;
	while ((c = TAILQ_FIRST(&ctl->clients)))
		client_free(c);
	listener_watch_free(ctl->watch);
	evconnlistener_free(ctl->lev);
	stats_free(ctl->stats);
	free(ctl);
}
