/* SPDX-License-Identifier: MIT */
/* control: provision and deprovision namespaces on request.
 *
 * Protocol: one command per line, one answer line per command, in order:
 *
 *   provision USER     ->  "ok USER NAMESPACE" once the namespace is ready
 *                          (links, addresses, routes, and its listeners
 *                          opened), or "error: what went wrong"
 *   deprovision USER   ->  "ok USER NAMESPACE" or "error: ..."
 *
 * A client waits for each answer before its next command is read, so one
 * client holds at most one request.  Requests for the same user from any
 * number of clients are coalesced by the provisioner: a namespace is made
 * once, every caller is told, and asking again for a ready namespace is a
 * cheap no-op.  Limits: lines of CONTROL_LINE_MAX bytes, CONTROL_CLIENTS
 * clients at once, CONTROL_IDLE seconds without a command.  The socket is
 * mode 0600 and owned by root: users reach it only through root (PAM).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "engine/daemon.h"
#include "engine/hosts.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "netns/provision.h"

#define CONTROL_LINE_MAX	1024
#define CONTROL_CLIENTS		64
#define CONTROL_IDLE		30

struct client {
	TAILQ_ENTRY(client) entry;
	struct daemon *d;
	struct bufferevent *bev;
	struct request *req;		/* the command being answered */
	bool done;			/* EOF or refused: close when answered */
};

struct request {
	struct daemon *d;
	struct client *c;		/* NULL once the client left */
	bool deprovision;
	char user[256];
	struct prov_spec spec;
};

static void client_free(struct client *c)
{
	struct daemon *d = c->d;

	if (c->req)
		c->req->c = NULL;
	TAILQ_REMOVE(&d->clients, c, entry);
	d->nclients--;
	bufferevent_free(c->bev);
	free(c);
}

static void client_reply(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void client_reply(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(c->bev), "\n", 1);
}

static void client_next(struct client *c);

static void request_done(void *arg, int err, const char *msg)
{
	struct request *q = arg;
	struct client *c = q->c;
	const char *what = q->deprovision ? "deprovision" : "provision";
	const struct timeval idle = { CONTROL_IDLE, 0 };

	if (err) {
		log_warnx("ns %s: %s for %s failed: %s", q->spec.ns, what,
			  q->user, msg ? msg : strerror(-err));
	} else {
		log_info("ns %s: %s for %s done", q->spec.ns, what, q->user);
		provisioned_set(q->d, q->user, &q->spec, !q->deprovision);
		/* listeners are open (or closed) when the caller hears "ok" */
		ns_sync(q->d);
	}
	if (c) {
		if (err)
			client_reply(c, "error: %s", msg ? msg : strerror(-err));
		else
			client_reply(c, "ok %s %s", q->user, q->spec.ns);
		c->req = NULL;
		bufferevent_set_timeouts(c->bev, &idle, NULL);
		client_next(c);
	}
	free(q);
}

/* Derive the spec of USER from the config's pool; 0, or -1 with WHY. */
int control_spec(struct daemon *d, const char *user, long index,
		 struct prov_spec *spec, char *why, size_t len)
{
	struct passwd *pw;
	int r;

	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(why, len, "no such user \"%s\"", user);
		return -1;
	}
	r = prov_spec_derive(&d->pool, user, pw->pw_uid, index, spec, why,
			     len);
	return r < 0 ? -1 : 0;
}

static void client_command(struct client *c, char *line)
{
	struct daemon *d = c->d;
	struct request *q;
	char *verb, *user, *rest, why[256];
	int r;

	verb = strtok_r(line, " \t\r", &rest);
	user = verb ? strtok_r(NULL, " \t\r", &rest) : NULL;
	if (!verb) {
		client_reply(c, "error: empty command");
		return;
	}
	if ((strcmp(verb, "provision") && strcmp(verb, "deprovision")) ||
	    !user || strtok_r(NULL, " \t\r", &rest)) {
		client_reply(c, "error: unknown command (try: provision USER, "
			     "deprovision USER)");
		return;
	}
	if (!d->prov) {
		client_reply(c, "error: provisioning is not configured");
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		client_reply(c, "error: out of memory");
		return;
	}
	q->deprovision = verb[0] == 'd';
	snprintf(q->user, sizeof(q->user), "%s", user);
	if (control_spec(d, q->user, config_provision_index(d->cfg, q->user),
			 &q->spec, why, sizeof(why)) < 0) {
		client_reply(c, "error: %s", why);
		free(q);
		return;
	}
	q->c = c;
	q->d = d;
	/* forgotten now: the links it loses must not be put back */
	if (q->deprovision)
		provisioned_set(d, q->user, &q->spec, false);
	r = q->deprovision ? prov_deprovision(d->prov, &q->spec,
					      request_done, q) :
			     prov_provision(d->prov, &q->spec, request_done, q);
	if (r < 0) {
		client_reply(c, "error: %s", strerror(-r));
		free(q);
		return;
	}
	c->req = q;
	/* no idle timeout while the client waits for an answer */
	bufferevent_set_timeouts(c->bev, NULL, NULL);
}

/* Answer the next complete line, unless a request is in flight; once the
 * client is done and everything is answered, close after the last byte. */
static void client_next(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char *line;
	size_t n;

	while (!c->req) {
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
		if (!line && c->done && evbuffer_get_length(in)) {
			/* a last command without its newline */
			n = evbuffer_get_length(in);
			line = malloc(n + 1);
			if (line) {
				evbuffer_remove(in, line, n);
				line[n] = '\0';
			}
		}
		if (!line) {
			if (evbuffer_get_length(in) > CONTROL_LINE_MAX) {
				client_reply(c, "error: line too long");
				evbuffer_drain(in, evbuffer_get_length(in));
				c->done = true;
			}
			break;
		}
		if (n > CONTROL_LINE_MAX)
			client_reply(c, "error: line too long");
		else
			client_command(c, line);
		free(line);
	}
	if (c->done && !c->req) {
		bufferevent_disable(c->bev, EV_READ);
		if (!evbuffer_get_length(bufferevent_get_output(c->bev)))
			client_free(c);
		/* else client_written() closes it once flushed */
	}
}

static void client_read(struct bufferevent *bev, void *arg)
{
	client_next(arg);
}

static void client_written(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	if (c->done && !c->req)
		client_free(c);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* half-closed after its commands: answer them, then close */
		c->done = true;
		client_next(c);
		return;
	}
	/* error or idle timeout: an answer in flight has nobody to go to */
	client_free(c);
}

static void control_accept(struct evconnlistener *lev, evutil_socket_t fd,
			   struct sockaddr *sa, int len, void *arg)
{
	struct daemon *d = arg;
	struct timeval idle = { CONTROL_IDLE, 0 };
	struct client *c;

	if (d->nclients >= CONTROL_CLIENTS) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->bev = bufferevent_socket_new(d->base, fd,
						     BEV_OPT_CLOSE_ON_FREE))) {
		free(c);
		close(fd);
		return;
	}
	c->d = d;
	TAILQ_INSERT_TAIL(&d->clients, c, entry);
	d->nclients++;
	bufferevent_setcb(c->bev, client_read, client_written, client_event,
			  c);
	bufferevent_set_timeouts(c->bev, &idle, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void control_error(struct evconnlistener *lev, void *arg)
{
	struct daemon *d = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
		listeners_fd_pressure(d, err);
	else
		log_warnx("control socket: accept: %s", strerror(err));
}

int control_open(struct daemon *d, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)], *slash;
	int fd, r;

	TAILQ_INIT(&d->clients);
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (unlink(path) < 0 && errno != ENOENT)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 64) < 0)
		goto fail;
	d->control = evconnlistener_new(d->base, control_accept, d,
					LEV_OPT_CLOSE_ON_FREE |
					LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!d->control) {
		errno = ENOMEM;
		goto fail;
	}
	evconnlistener_set_error_cb(d->control, control_error);
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

void control_close(struct daemon *d)
{
	struct client *c;

	if (!d->control)
		return;
	while ((c = TAILQ_FIRST(&d->clients)))
		client_free(c);
	evconnlistener_free(d->control);
	d->control = NULL;
}
