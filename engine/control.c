/* SPDX-License-Identifier: MIT */
/* control: provision and deprovision namespaces on request.
 *
 * Protocol (ctlproto.c parses it): one command per line, one answer line
 * per command, in order:
 *
 *   provision USER     ->  "ok USER NAMESPACE" once the namespace is ready
 *                          and every listener of it is open; when some
 *                          could not be opened (they are retried),
 *                          "ok USER NAMESPACE listeners UP/TOTAL: SERVICE
 *                          ADDRESS: reason; ..." names each of them.  Or
 *                          "error: what went wrong".
 *   deprovision USER   ->  "ok USER NAMESPACE" or "error: ..."
 *
 * Clients and answers are bounded, so that no client can make the daemon
 * buffer without limit or hold a slot for ever:
 *  - a client has one request at a time; while it is in flight nothing
 *    more is read from it (the kernel's buffer fills, the client waits);
 *  - lines of at most CTLPROTO_LINE_MAX bytes: a longer one is answered
 *    "error: line too long" and the client is closed;
 *  - reading stops while more than OUT_MAX bytes of answers wait for a
 *    client that does not read them; a client whose answers do not move
 *    for IO_TIMEOUT seconds, or that is silent that long between
 *    commands, is dropped;
 *  - CONTROL_CLIENTS clients at once; the next one is told
 *    "error: too many clients" and closed.
 * The socket is made with umask 0177 (never reachable by others, not even
 * for a moment) and is root's, mode 0600: users reach it through root
 * (PAM).  Under a descriptor shortage it pauses with the relay listeners.
 */
#include <errno.h>
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

#include "engine/control.h"
#include "engine/ctlproto.h"
#include "engine/daemon.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/nstable.h"
#include "engine/provreq.h"

#define CONTROL_CLIENTS		64
#define IO_TIMEOUT		30	/* seconds */
#define OUT_MAX			(64 * 1024)

struct client {
	TAILQ_ENTRY(client) entry;
	struct control *ctl;
	struct bufferevent *bev;
	struct provreq_waiter *w;	/* the request being answered */
	bool done;			/* EOF or refused: close when answered */
};

struct control {
	struct daemon *d;
	struct evconnlistener *lev;
	TAILQ_HEAD(, client) clients;
	unsigned n;
};

static void client_free(struct client *c)
{
	struct control *ctl = c->ctl;

	if (c->w)
		provreq_cancel(c->w);
	TAILQ_REMOVE(&ctl->clients, c, entry);
	ctl->n--;
	bufferevent_free(c->bev);
	free(c);
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

static void request_done(void *arg, int err, const char *msg,
			 const char *user, const char *ns)
{
	struct client *c = arg;
	struct daemon *d = c->ctl->d;
	char why[1024];
	unsigned up, total;

	c->w = NULL;
	if (err)
		client_reply(c, "error: %s", msg ? msg : strerror(-err));
	else if (nstable_listeners(d->nst, ns, &up, &total, why,
				   sizeof(why)) < 0 || up == total)
		client_reply(c, "ok %s %s", user, ns);
	else
		client_reply(c, "ok %s %s listeners %u/%u: %s", user, ns, up,
			     total, why);
	client_next(c);
}

static void client_command(struct client *c, const char *line, size_t len)
{
	struct daemon *d = c->ctl->d;
	struct ctlproto_req req;
	char why[128];

	if (ctlproto_parse(line, len, &req, why, sizeof(why)) < 0) {
		client_reply(c, "error: %s", why);
		return;
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

	while (!c->w && evbuffer_get_length(out) < OUT_MAX) {
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
	if (c->done && !c->w) {
		evbuffer_drain(in, evbuffer_get_length(in));
		bufferevent_disable(c->bev, EV_READ);
		if (!evbuffer_get_length(out))
			client_free(c);
		/* else client_written() closes it once flushed */
		return;
	}
	/* read only what the next command needs */
	if (c->w || evbuffer_get_length(out) >= OUT_MAX)
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

	if (c->done && !c->w)
		client_free(c);
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

static void control_accept(struct evconnlistener *lev, evutil_socket_t fd,
			   struct sockaddr *sa, int len, void *arg)
{
	static const char busy[] = "error: too many clients\n";
	struct control *ctl = arg;
	struct timeval tmo = { IO_TIMEOUT, 0 };
	struct client *c;

	if (ctl->n >= CONTROL_CLIENTS) {
		/* a fresh socket's buffer takes this whole */
		if (write(fd, busy, sizeof(busy) - 1) < 0)
			log_debug("control: refusing a client: %s",
				  strerror(errno));
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->bev = bufferevent_socket_new(ctl->d->base, fd,
						     BEV_OPT_CLOSE_ON_FREE))) {
		free(c);
		close(fd);
		return;
	}
	c->ctl = ctl;
	TAILQ_INSERT_TAIL(&ctl->clients, c, entry);
	ctl->n++;
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

struct control *control_open(struct daemon *d, const char *path, int *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)], *slash;
	struct control *ctl;
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	strcpy(sun.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			*err = -errno;
			return NULL;
		}
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		*err = -ENOMEM;
		return NULL;
	}
	TAILQ_INIT(&ctl->clients);
	ctl->d = d;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (unlink(path) < 0 && errno != ENOENT)
		goto fail;
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0)
		goto fail;
	ctl->lev = evconnlistener_new(d->base, control_accept, ctl,
				      LEV_OPT_CLOSE_ON_FREE |
				      LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!ctl->lev) {
		errno = ENOMEM;
		goto fail;
	}
	evconnlistener_set_error_cb(ctl->lev, control_error);
	listener_set_watch(d->ls, ctl->lev);
	return ctl;
fail:
	*err = -errno;
	if (fd >= 0)
		close(fd);
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
	listener_set_unwatch(ctl->d->ls);
	evconnlistener_free(ctl->lev);
	free(ctl);
}
