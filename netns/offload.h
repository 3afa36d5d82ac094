/* SPDX-License-Identifier: MIT */
/* offload: run blocking calls on a worker thread, finish them in the loop.
 *
 * For kernel calls that block for milliseconds (deleting a veth waits for
 * RCU grace periods inside sendmsg(), unshare(CLONE_NEWNET), mount) and for
 * NSS look-ups (getpwnam): work(arg) runs on the worker thread, then
 * done(arg) runs on the event loop's thread.  The loop keeps turning
 * meanwhile.  Never logs.
 *
 * The worker thread is created on the first offload_run(), not before:
 * capabilities are per thread on Linux, and a thread created before the
 * daemon drops its privileges would keep all of them.  Call offload_run()
 * for the first time only once privileges are final.
 */
#ifndef NSRELAY_OFFLOAD_H
#define NSRELAY_OFFLOAD_H

struct event_base;
struct offload;

/* An offloader on base (no thread yet).  NULL with errno set. */
struct offload *offload_new(struct event_base *base);

/* Queue work(arg) on the worker (started now if it is not running).  Items
 * run one at a time, in order; done(arg) runs later on the loop thread,
 * never inside offload_run(), in the same order.  work must not touch
 * anything the loop thread uses without its own locking; arg is the
 * caller's until done runs.  Returns 0 (done will run exactly once) or
 * -errno (-ENOMEM, -EAGAIN: no thread; done will not run). */
int offload_run(struct offload *o, void (*work)(void *arg),
		void (*done)(void *arg), void *arg);

/* Items accepted and whose done has not run yet. */
unsigned offload_pending(const struct offload *o);

/* Stop: every queued item still runs its work (on the worker, which is
 * then joined) and its done (here, on the calling thread, in order), so
 * each arg gets its done exactly once.  Then release.  Accepts NULL.  Must
 * be called from the loop thread; not from inside a done callback. */
void offload_free(struct offload *o);

#endif
