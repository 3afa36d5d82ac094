/* SPDX-License-Identifier: MIT */
/* prov_int: what the pieces of the provisioner share (private to netns/).
 *
 * The provisioner is one module in several files, each with one job, and
 * calls go one way only, from the driver down:
 *
 *   provision.c   the driver: the job table (the per-name queue, the run
 *                 queue), the public API, and job_run(), the one place a
 *                 job moves on: it asks prov_plan what next and does what
 *                 only it does (finish, answer early, sleep, park)
 *   prov_plan.c   the steps: from what the kernel said, decide the next
 *                 step and start it; returns what the driver is to do
 *   prov_send.c   building and sending the netlink requests of a step
 *   prov_ns.c     the namespace file: open, create, remove
 *   prov_work.c   the blocking kernel calls, run on a worker thread
 *   prov_gone.c   deprovision: seeing the kernel take a veth with its
 *                 namespace (link and nsid events)
 *   prov_read.c   reading kernel state: replies parsed into the job, and
 *                 the job's first error
 *
 *   provision.c -> prov_plan.c -> prov_send.c, prov_ns.c -> prov_work.c
 *                              -> prov_gone.c             -> prov_read.c
 *
 * What completes later (a netlink answer, a worker's result, a link
 * event) is applied to the job where it arrives, and the driver is told
 * through the callback it set (prov_job_go()): no piece calls back into
 * the one that drives it.
 *
 * Only the loop thread touches these structures.
 */
#ifndef NSRELAY_PROV_INT_H
#define NSRELAY_PROV_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "netns/netns.h"
#include "netns/nl.h"
#include "netns/provision.h"

struct event;
struct mnl_socket;
struct nlmsghdr;
struct offload;

#define PROV_DEFAULT_PARALLEL	32
#define PROV_MSG_MAX		512
#define PROV_REQ_BUF		1024
#define PROV_NS_RETRIES		10	/* looks at a non-namespace file */
#define PROV_NS_RETRY_MS	50
#define PROV_MAX_LINKS		4096	/* links remembered from one dump */
/* Deprovision: after the namespace's file is gone, how long to wait for the
 * kernel to take the veth with the namespace before deleting the host end
 * explicitly - from the removal or from the last sign of progress (one of
 * our veths or nsids going away), whichever is later.  GONE_WAIT while the
 * namespace shows no sign of dying (something else may hold it: a process
 * inside, a socket), GONE_DEAD once its nsid is gone (it is being torn
 * down: only the kernel's pace matters). */
#define PROV_GONE_WAIT_MS	2000
#define PROV_GONE_DEAD_MS	20000

enum prov_op { OP_UP, OP_DOWN };

enum prov_step {
	S_NS,		/* open or create the namespace (synchronous) */
	S_PROBE,	/* host link, nsid, namespace links */
	S_CREATE,	/* the veth pair */
	S_INSPECT,	/* addresses, routes, addresses in use */
	S_APPLY,	/* what is missing */
	S_UNDO,		/* failed: remove what this job created */
	S_DPROBE,	/* deprovision: host link, nsid */
	S_DDEL,		/* deprovision: delete the veth */
	S_DFILE,	/* deprovision: unmount and unlink */
	S_DDONE,	/* deprovision: the file is gone */
	S_DGONE,	/* deprovision: wait for the kernel to take the veth */
	S_DCHECK,	/* deprovision: does the host end still exist? */
	S_DFORCE,	/* deprovision: it did not go: delete it */
};

/* The four addresses of a spec. */
enum { T_H4, T_N4, T_H6, T_N6, T_MAX };

struct prov_link {
	uint32_t index;
	uint32_t flags;
	uint32_t peer;			/* IFLA_LINK */
	int32_t nsid;			/* IFLA_LINK_NETNSID */
	bool has_peer, has_nsid, veth;
	char name[IFNAMSIZ];
	char kind[16];
};

struct prov_target {
	int family;
	const void *addr;		/* into job->spec */
	unsigned plen;
	bool host_side;
	bool here;			/* on its link, right prefix */
	bool wrong[2];			/* per dump (SRC_*): other prefix, or */
	char where[2][96];		/* on another interface; where */
	bool local;			/* RTN_LOCAL on the host */
};

/* Which address dump saw it: each forgets only its own on a restart. */
enum { SRC_NS, SRC_HOST };

struct prov_waiter {
	struct prov_waiter *next;
	prov_cb cb;
	void *arg;
};

struct prov_ent;

struct prov_job {
	TAILQ_ENTRY(prov_job) q;	/* prov->runq, ->running or ->done */
	TAILQ_ENTRY(prov_job) same;	/* ent->jobs */
	struct prov *prov;
	struct prov_ent *ent;
	enum prov_op op;
	enum prov_step step;
	struct prov_spec spec;
	struct prov_waiter *waiters, **wtail;
	unsigned pending;		/* netlink requests of this step */
	bool finished, sleeping;
	unsigned sleep_ms;		/* PLAN_SLEEP, PLAN_PARK: how long */
	int err;
	char msg[PROV_MSG_MAX];
	char path[PATH_MAX];

	int nsfd;			/* the namespace's handle, -1 none
					 * (struct prov_privops) */
	struct netns_id ns_id;
	struct nl *nsnl;
	struct event *timer;		/* NS retries */
	unsigned ns_tries;
	bool ns_created, veth_created, probed_after_create;
	bool ns_missing;		/* deprovision: nothing there */
	bool ns_again;			/* an empty file: look again */
	bool rm_file;			/* deprovision: a file to remove */

	/* deprovision of our veth by removing the namespace (prov_gone.c) */
	TAILQ_ENTRY(prov_job) gq;	/* prov->watched */
	bool watched;			/* in prov->watched */
	bool gone;			/* the host end was deleted */
	bool dying;			/* the namespace's nsid was freed */
	bool recheck;			/* events were lost: look */
	bool parked;			/* in prov->parked: not in active */
	bool answered;			/* waiters told at the file's removal */
	uint64_t gone_since;		/* ms, when the file was removed */

	struct prov_link host;
	bool host_found;
	int32_t nsid;
	struct prov_link *links;	/* the namespace's, from the dump */
	size_t nlinks;
	struct prov_link *peer, *lo;	/* into links, after PROBE */

	struct prov_target t[T_MAX];
	bool def_ok[2], def_other[2];	/* [0] IPv4, [1] IPv6 */
	char def_where[2][96];
};

/* One netlink request of a job: what it is, for its answer and messages. */
enum req_kind {
	R_PLAIN,	/* any error fails the job */
	R_HOST_GET,	/* ENODEV = no such link */
	R_NSID,
	R_NS_LINKS,
	R_NS_ADDRS,
	R_NS_ROUTES,
	R_HOST_ADDRS,
	R_ROUTE_GET,	/* "unreachable" answers = not local */
	R_ADDR_GET,	/* EADDRNOTAVAIL = not assigned on the host */
	R_BEST_EFFORT,	/* errors ignored (undo) */
	R_DEL,		/* ENODEV = already gone */
};

struct prov_req {
	struct prov_job *job;
	enum req_kind kind;
	int idx;
	char what[160];
};

struct prov_ent {
	struct prov_ent *hnext;
	/* the first one runs, or waits in runq */
	TAILQ_HEAD(prov_ent_jobs, prov_job) jobs;
	bool ready;
	struct prov_spec spec;		/* when ready */
	dev_t dev;
	ino_t ino;
	char name[];
};

TAILQ_HEAD(prov_job_list, prov_job);

struct prov {
	struct event_base *base;
	char *dir;
	struct nl *host;
	struct event *kick;		/* start runnable jobs */
	struct event *done_ev;		/* run callbacks of finished jobs */
	struct prov_job_list runq, running, done;
	struct prov_job_list parked;	/* waiting for the kernel only */
	unsigned active, parallel, timeout_ms;
	bool dir_ready;
	struct prov_ent **tab;
	size_t tab_size, n_ent;
	unsigned busy;
	bool dying;
	void (*go)(struct prov_job *j);	/* the driver's (prov_job_go) */
	struct offload *off;		/* blocking calls (prov_work.c) */
	struct prov_privops ops;	/* the privileged calls */
	int wsock;			/* the worker's own: only it uses it */
	uint32_t wportid, wseq;		/* worker only */

	/* prov_gone.c: link and nsid events while jobs are watched */
	struct prov_job_list watched;	/* via gq */
	int gone_fd;			/* -1 when nothing is watched */
	struct event *gone_ev;
	uint64_t gone_progress;		/* ms, last of our links or nsids gone */

	/* prov_set_early(): deprovisions answered once their file is gone */
	bool early;
	struct prov_waiter *told, **told_tail;	/* to call back, with 0 */
	prov_late_cb late_cb;
	void *late_arg;
};

/* --- provision.c: the driver.  It alone runs jobs: it asks prov_plan
 * what to do next, and does what only it does (finish, answer early,
 * sleep, park).  The steps below never call it: a request that completes
 * later tells it through prov_job_go(), the callback it set in struct
 * prov, so that no piece calls back into the one that drives it. */

/* A job's requests are all answered, or a watched event came: go on. */
static inline void prov_job_go(struct prov_job *j)
{
	j->prov->go(j);
}

/* --- prov_plan.c: the steps */

/* What the driver does next with a job. */
enum prov_next {
	PLAN_GO,	/* requests sent (j->pending), or a new step: again */
	PLAN_FINISH,	/* over: success or j->err */
	PLAN_ANSWER,	/* answer the waiters now (prov_set_early), go on */
	PLAN_SLEEP,	/* look again in j->sleep_ms */
	PLAN_PARK,	/* the same, and the job holds nothing meanwhile:
			 * not counted against `parallel` */
};

/* Decide j's next step from what its last one found, and start it.  Only
 * while j has no request outstanding and does not sleep. */
enum prov_next prov_plan_next(struct prov_job *j);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t prov_now_ms(void);

/* --- prov_read.c: replies, and the job's record */

/* Record the first error of a job: err (-errno) and its message. */
void prov_job_error(struct prov_job *j, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const char *prov_ntop(int family, const void *addr, char *buf, size_t n);

/* Pure parsers (also used on the worker).  0, 1 (another kind of message)
 * or -EPROTO.  prov_parse_nsid sets *nsid only if the reply carries one. */
int prov_parse_link(const struct nlmsghdr *nlh, struct prov_link *li);
int prov_parse_nsid(const struct nlmsghdr *nlh, int32_t *nsid);
struct prov_link *prov_link_by_index(struct prov_job *j, uint32_t idx);
struct prov_link *prov_link_by_name(struct prov_job *j, const char *n);

/* Message callbacks (nl_msg_fn) of the requests; arg is a struct prov_req. */
int prov_msg_host_link(const struct nlmsghdr *nlh, void *arg);
int prov_msg_nsid(const struct nlmsghdr *nlh, void *arg);
int prov_msg_ns_link(const struct nlmsghdr *nlh, void *arg);
int prov_msg_ns_addr(const struct nlmsghdr *nlh, void *arg);
int prov_msg_host_addr(const struct nlmsghdr *nlh, void *arg);
int prov_msg_ns_route(const struct nlmsghdr *nlh, void *arg);
int prov_msg_route_get(const struct nlmsghdr *nlh, void *arg);
int prov_msg_addr_get(const struct nlmsghdr *nlh, void *arg);

/* --- prov_send.c: requests (each counts in j->pending, or records an
 * error in j) */

/* The host socket, reopened if it failed.  NULL and *err set on failure. */
struct nl *prov_host_nl(struct prov *prov, int *err);
void prov_send_get_link(struct prov_job *j);
void prov_send_get_nsid(struct prov_job *j);
void prov_send_dump(struct prov_job *j, bool on_host, uint16_t type,
		    uint32_t index, nl_msg_fn cb, enum req_kind kind,
		    const char *what);
void prov_send_set_up(struct prov_job *j, bool on_host, uint32_t index,
		      const char *name);
void prov_send_new_veth(struct prov_job *j);
void prov_send_add_addr(struct prov_job *j, int ti, uint32_t index,
			const char *ifname);
void prov_send_add_default(struct prov_job *j, int f);
void prov_send_local_check(struct prov_job *j, int ti);

/* --- prov_ns.c: the namespace file */

/* Step NS: open (or create) the namespace of j, on the worker.  Returns 0
 * when j->nsfd is open (or, deprovisioning, j->ns_missing says nothing is
 * there), 1 when it is under way (the job goes on when it is done),
 * PROV_NS_LATER to look again in PROV_NS_RETRY_MS, -errno on failure
 * (recorded). */
#define PROV_NS_LATER	2
int prov_ns_open(struct prov_job *j);

/* Let go of j's handle (a reference would keep the namespace alive). */
void prov_ns_close(struct prov_job *j);

/* Undo: remove the namespace this job created (if it did), on the worker
 * (the job advances when it is done). */
void prov_ns_undo(struct prov_job *j);

/* Deprovision: unmount and remove the file (error recorded in j). */
void prov_ns_remove(struct prov_job *j);

/* A struct nl on an rtnetlink socket in the host's namespace (HANDLE -1)
 * or HANDLE's, made by the provisioner's privileged calls.  NULL and
 * *err. */
struct nl *prov_nl_open(struct prov *prov, int handle, int *err);

/* --- prov_work.c: blocking calls on the worker; each counts in
 * j->pending until its result is applied to j on the loop, or records an
 * error in j when it cannot start */

/* RTM_DELLINK of HOST_IF by j->host.index, or by name; kind R_DEL (ENODEV
 * is success) or R_BEST_EFFORT (errors ignored). */
void prov_work_del_link(struct prov_job *j, enum req_kind kind, bool by_name);

/* Deprovision's probe, off the loop (the kernel may hold RTNL for a whole
 * batch of namespaces being torn down, and a lookup waits for it): GET link
 * HOST_IF, then GETNSID of j->nsfd; sets j->host, j->host_found, j->nsid. */
void prov_work_probe(struct prov_job *j);

/* Whether j->host.index is still HOST_IF (RTM_GETLINK): when it is not,
 * j->gone is set; when it is and del, it is deleted (ENODEV is success). */
void prov_work_check_link(struct prov_job *j, bool del);

/* ops.ns_open(j->spec.ns, FLAGS); on success j->nsfd, j->ns_id and
 * j->ns_created are set; -EAGAIN counts in j->ns_tries; -ENOENT sets
 * j->ns_missing; other errors are recorded. */
void prov_work_ns_open(struct prov_job *j, unsigned flags);

/* ops.ns_remove(j->spec.ns): umount2 + unlink. */
void prov_work_ns_remove(struct prov_job *j);

/* --- prov_gone.c: watching our veths go away with their namespaces */

/* Watch for the end of j->host.index and of j->nsid (the socket opens with
 * the first job watched).  0 or -errno (then delete the veth explicitly). */
int prov_gone_watch(struct prov_job *j);

/* Stop watching j (the socket closes with the last one).  Accepts a job
 * that is not watched. */
void prov_gone_unwatch(struct prov_job *j);

#endif
