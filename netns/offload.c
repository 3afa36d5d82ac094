/* SPDX-License-Identifier: MIT */
/* offload: one worker thread for blocking calls, completions in the loop.
 *
 * Theory of operation
 *
 * Two FIFO lists under one mutex: `todo` (accepted, work not run yet) and
 * `done` (work run, done callback not run yet).  The worker sleeps on a
 * condition variable while `todo` is empty; it takes the first item, runs
 * its work without the lock, appends it to `done` and writes to an eventfd.
 * The loop watches the eventfd (EV_READ | EV_PERSIST): its callback reads
 * it, takes the whole `done` list under the lock and runs the done
 * callbacks in order, without the lock.  No libevent call is made from the
 * worker, so libevent needs no thread support; the only state shared
 * between the threads is the two lists, the stop flag and the eventfd.
 *
 * The thread starts on the first offload_run() (see offload.h: it then
 * carries the capabilities the loop thread has at that moment, i.e. after
 * privileges were dropped).  It blocks every signal, so signals keep going
 * to the loop thread.
 *
 * offload_free() sets `stop` and wakes the worker, which drains `todo`
 * before it exits; after the join, the done callbacks of everything still
 * on `done` run on the caller's thread.  So every accepted item ends with
 * exactly one done callback, and the owner may free what arg points to
 * there.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "netns/offload.h"

struct offload_item {
	struct offload_item *next;
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
};

struct offload_list {
	struct offload_item *head, **tail;
};

struct offload {
	struct event_base *base;
	int efd;
	struct event *ev;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct offload_list todo, done;	/* under lock */
	bool stop;			/* under lock */
	bool started;			/* loop thread only */
	pthread_t thread;
	unsigned pending;		/* loop thread only */
};

static void list_init(struct offload_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void list_add(struct offload_list *l, struct offload_item *it)
{
	it->next = NULL;
	*l->tail = it;
	l->tail = &it->next;
}

static struct offload_item *list_pop(struct offload_list *l)
{
	struct offload_item *it = l->head;

	if (it) {
		l->head = it->next;
		if (!l->head)
			l->tail = &l->head;
	}
	return it;
}

static void *offload_main(void *arg)
{
	struct offload *o = arg;
	struct offload_item *it;
	uint64_t one = 1;
	ssize_t n;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (!o->todo.head && !o->stop)
			pthread_cond_wait(&o->wake, &o->lock);
		it = list_pop(&o->todo);
		if (!it)
			break;		/* stop, and nothing left to do */
		pthread_mutex_unlock(&o->lock);
		it->work(it->arg);
		pthread_mutex_lock(&o->lock);
		list_add(&o->done, it);
		n = write(o->efd, &one, sizeof(one));
		(void)n;	/* only fails when the counter is full: set */
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* Run the done callbacks of what the worker finished. */
static void offload_complete(struct offload *o)
{
	struct offload_list l;
	struct offload_item *it;

	pthread_mutex_lock(&o->lock);
	l = o->done;
	list_init(&o->done);
	pthread_mutex_unlock(&o->lock);
	if (l.head == NULL)
		return;
	while ((it = list_pop(&l))) {
		o->pending--;
		it->done(it->arg);
		free(it);
	}
}

static void offload_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct offload *o = arg;
	uint64_t v;
	ssize_t n = read(o->efd, &v, sizeof(v));

	(void)n;	/* EAGAIN: nothing new, the list says so too */
	offload_complete(o);
}

struct offload *offload_new(struct event_base *base)
{
	struct offload *o = calloc(1, sizeof(*o));
	int err;

	if (!o)
		return NULL;
	o->base = base;
	list_init(&o->todo);
	list_init(&o->done);
	o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (o->efd < 0)
		goto fail;
	o->ev = event_new(base, o->efd, EV_READ | EV_PERSIST, offload_read_cb,
			  o);
	if (!o->ev || event_add(o->ev, NULL) < 0) {
		errno = ENOMEM;
		goto fail;
	}
	if ((err = pthread_mutex_init(&o->lock, NULL)) != 0) {
		errno = err;
		goto fail;
	}
	if ((err = pthread_cond_init(&o->wake, NULL)) != 0) {
		pthread_mutex_destroy(&o->lock);
		errno = err;
		goto fail;
	}
	return o;
fail:
	err = errno;
	if (o->ev)
		event_free(o->ev);
	if (o->efd >= 0)
		close(o->efd);
	free(o);
	errno = err;
	return NULL;
}

/* The worker, with every signal blocked (it inherits the mask). */
static int offload_start(struct offload *o)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&o->thread, NULL, offload_main, o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	o->started = true;
	return 0;
}

int offload_run(struct offload *o, void (*work)(void *arg),
		void (*done)(void *arg), void *arg)
{
	struct offload_item *it;
	int err;

	if (!o->started && (err = offload_start(o)) < 0)
		return err;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->work = work;
	it->done = done;
	it->arg = arg;
	pthread_mutex_lock(&o->lock);
	list_add(&o->todo, it);
	pthread_cond_signal(&o->wake);
	pthread_mutex_unlock(&o->lock);
	o->pending++;
	return 0;
}

unsigned offload_pending(const struct offload *o)
{
	return o->pending;
}

void offload_free(struct offload *o)
{
	if (!o)
		return;
	if (o->started) {
		pthread_mutex_lock(&o->lock);
		o->stop = true;
		pthread_cond_signal(&o->wake);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
	}
	offload_complete(o);
	event_free(o->ev);
	close(o->efd);
	pthread_cond_destroy(&o->wake);
	pthread_mutex_destroy(&o->lock);
	free(o);
}
