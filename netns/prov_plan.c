/* SPDX-License-Identifier: MIT */
/* prov_plan: the steps of a job - from what the kernel said, what to do next.
 *
 * Theory of operation
 *
 * Provisioning, step by step.  Every step sends its requests at once (on the
 * host socket and on the socket inside the namespace, each in order), waits
 * for all of them, then decides the next step from what the kernel said:
 *
 *   NS       open DIR/NAME or create it (prov_ns.c); synchronous.
 *   PROBE    host: GET link HOST_IF, then GETNSID of the namespace (after the
 *            GET: that allocates the nsid).  namespace: dump links.
 *            HOST_IF exists: it must be a veth whose peer (IFLA_LINK_NETNSID
 *            = our nsid, IFLA_LINK = an index in the namespace) is NS_IF in
 *            our namespace.  Missing: NS_IF must not exist in the namespace.
 *            (A namespace this job created has only lo: just the GET.)
 *   CREATE   RTM_NEWLINK veth HOST_IF (up), peer NS_IF created directly in
 *            the namespace (IFLA_NET_NS_FD inside VETH_INFO_PEER: the peer
 *            name never exists on the host).  Then PROBE again, inside the
 *            namespace only: NS_IF's IFLA_LINK is the host end's index.
 *   INSPECT  namespace: dump addresses, dump routes (unless this job created
 *            it: then there are none).  host: dump addresses
 *            of HOST_IF (kernel-filtered; skipped for a veth just created),
 *            and is each of the four addresses assigned somewhere on the
 *            host?  IPv6: RTM_GETADDR for the address (a hash lookup that
 *            also sees tentative addresses and down links); IPv4 has no
 *            such request: RTM_GETROUTE, RTN_LOCAL means assigned.
 *   APPLY    only what is missing, in dependency order per socket: host end
 *            up, host addresses; lo up, namespace end up, namespace
 *            addresses (IPv6 with IFA_F_NODAD: usable at once, no DAD on a
 *            two-ended link), default routes (proto static) via the host end.
 *
 * Idempotence: every step reads before it writes and APPLY sends nothing for
 * what already matches, so provisioning a ready namespace makes no change and
 * never bounces a link.  What is never "fixed", because it may belong to
 * someone else: a host interface with our name that is not our veth (another
 * kind, or a veth whose peer is on the host or in another namespace - the
 * kernel destroys a veth with its namespace, so a leftover whose peer is
 * elsewhere means some process keeps that namespace alive); NS_IF in our
 * namespace not paired with HOST_IF; one of our addresses on another
 * interface or with another prefix; a different default route.  Those fail
 * the job with -EEXIST or -EADDRINUSE and a message naming the piece.  What
 * is fixed: missing pieces, links that are down, and the empty placeholder
 * file of an interrupted namespace creation.  If a job fails after creating
 * the namespace or the veth itself, it removes them again (what existed
 * before is left as it was).
 *
 * Deprovisioning removes exactly what provisioning creates: HOST_IF when it
 * is a veth whose peer is in this namespace (the peer goes with it), and
 * the bind mount (umount2 MNT_DETACH) and the file, as `ip netns del` does:
 *
 *   DPROBE   host: GET link HOST_IF, GETNSID of the namespace, on the
 *            worker (RTNL may be held long by the kernel's teardown of
 *            earlier namespaces).  Then the job closes its own descriptor
 *            of the namespace.
 *   DFILE    unmount and unlink (worker).  When HOST_IF is ours, this is
 *            also how it goes: the namespace dies with its last reference
 *            and the kernel deletes its devices, our veth's peer with them
 *            and so the veth, many namespaces per batch of grace periods,
 *            instead of one RTM_DELLINK (20-30 ms) per veth.
 *   DGONE    wait for that (prov_gone.c: link and nsid events), parked: the
 *            job holds nothing and does not count against `parallel`.  If
 *            it does not happen in time (PROV_GONE_WAIT_MS after the
 *            removal or the last sign of the kernel's progress;
 *            PROV_GONE_DEAD_MS once the namespace is known to be dying),
 *            something else keeps the namespace alive:
 *   DFORCE   delete HOST_IF explicitly (worker: RTM_GETLINK by index, still
 *            named HOST_IF?, RTM_DELLINK).
 *   DCHECK   after lost events: is HOST_IF still there (worker)?  If so,
 *            back to DGONE.
 *   DDEL     HOST_IF explicitly first, as before, when the events cannot be
 *            watched (no socket).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/rtnetlink.h>

#include "netns/prov_int.h"

/* What PROBE asks depends on what this job already did: a namespace it
 * just created holds only lo (nothing to list, and a host link with our
 * name cannot be paired with it); after CREATE, the namespace end's
 * IFLA_LINK names the host end, so only the namespace is listed. */
static void start_probe(struct prov_job *j)
{
	j->step = S_PROBE;
	j->nlinks = 0;
	if (!j->veth_created)
		prov_send_get_link(j);
	if (!j->ns_created)
		prov_send_get_nsid(j);
	if (!j->ns_created || j->veth_created)
		prov_send_dump(j, false, RTM_GETLINK, 0, prov_msg_ns_link, R_NS_LINKS,
			  "list the links of the namespace");
}

static enum prov_next step_ns(struct prov_job *j)
{
	int err, r;

	r = prov_ns_open(j);
	if (r == PROV_NS_LATER) {
		j->sleep_ms = PROV_NS_RETRY_MS;
		return PLAN_SLEEP;
	}
	if (r)
		return PLAN_GO;		/* error recorded, or under way */
	if (j->op == OP_DOWN) {
		if (j->nsfd < 0) {
			j->step = S_DFILE;
			return PLAN_GO;
		}
		j->step = S_DPROBE;
		prov_work_probe(j);	/* on the worker: see prov_work.c */
		return PLAN_GO;
	}
	if (!j->nsnl) {
		j->nsnl = prov_nl_open(j->prov, j->nsfd, &err);
		if (!j->nsnl) {
			prov_job_error(j, err, "netlink socket in the namespace: %s",
				  strerror(-err));
			return PLAN_GO;
		}
	}
	nl_set_timeout(j->nsnl, j->prov->timeout_ms);
	start_probe(j);
	return PLAN_GO;
}

/* After CREATE: the pair as the namespace sees it. */
static bool probe_created(struct prov_job *j)
{
	j->peer = prov_link_by_name(j, j->spec.ns_if);
	if (!j->peer || !j->peer->veth || !j->peer->has_peer) {
		prov_job_error(j, -ENODEV, "veth %s created, but %s is not in the "
			  "namespace", j->spec.host_if, j->spec.ns_if);
		return false;
	}
	memset(&j->host, 0, sizeof(j->host));
	j->host.index = j->peer->peer;
	j->host.flags = IFF_UP;		/* created up */
	j->host.veth = true;
	snprintf(j->host.name, sizeof(j->host.name), "%s", j->spec.host_if);
	j->host_found = true;
	return true;
}

/* An existing HOST_IF: ours only if its peer is NS_IF in our namespace. */
static bool probe_existing(struct prov_job *j)
{
	if (!j->host.veth) {
		prov_job_error(j, -EEXIST, "host interface %s exists and is not a "
			  "veth (kind %s)", j->spec.host_if,
			  j->host.kind[0] ? j->host.kind : "none");
		return false;
	}
	if (!j->host.has_nsid || !j->host.has_peer) {
		prov_job_error(j, -EEXIST, "host interface %s exists and its veth "
			  "peer is on the host, not in the namespace",
			  j->spec.host_if);
		return false;
	}
	if (j->ns_created || j->nsid < 0 || j->host.nsid != j->nsid) {
		prov_job_error(j, -EEXIST, "host interface %s exists and its veth "
			  "peer is in another namespace (nsid %d)",
			  j->spec.host_if, j->host.nsid);
		return false;
	}
	j->peer = prov_link_by_index(j, j->host.peer);
	if (!j->peer) {
		prov_job_error(j, -ENODEV, "the peer of %s is not in the namespace",
			  j->spec.host_if);
		return false;
	}
	if (strcmp(j->peer->name, j->spec.ns_if)) {
		prov_job_error(j, -EEXIST, "the peer of %s in the namespace is "
			  "named %s, not %s", j->spec.host_if, j->peer->name,
			  j->spec.ns_if);
		return false;
	}
	return true;
}

static void step_probe_done(struct prov_job *j)
{
	if (j->veth_created) {
		if (!probe_created(j))
			return;
	} else if (j->host_found) {
		if (!probe_existing(j))
			return;
	} else {
		if (prov_link_by_name(j, j->spec.ns_if)) {
			prov_job_error(j, -EEXIST, "%s already exists in the "
				  "namespace without a peer %s on the host",
				  j->spec.ns_if, j->spec.host_if);
			return;
		}
		j->step = S_CREATE;
		prov_send_new_veth(j);
		return;
	}
	j->lo = prov_link_by_name(j, "lo");
	if (!j->lo) {
		prov_job_error(j, -ENODEV, "no lo in the namespace");
		return;
	}

	/* a namespace this job created has no address or route yet */
	j->step = S_INSPECT;
	if (!j->ns_created) {
		prov_send_dump(j, false, RTM_GETADDR, 0, prov_msg_ns_addr, R_NS_ADDRS,
			  "list the addresses of the namespace");
		prov_send_dump(j, false, RTM_GETROUTE, 0, prov_msg_ns_route, R_NS_ROUTES,
			  "list the routes of the namespace");
	}
	if (!j->veth_created)
		prov_send_dump(j, true, RTM_GETADDR, j->host.index, prov_msg_host_addr,
			  R_HOST_ADDRS, "list the addresses of the host end");
	prov_send_local_check(j, T_H4);
	prov_send_local_check(j, T_N4);
	prov_send_local_check(j, T_H6);
	prov_send_local_check(j, T_N6);
}

static void step_inspect_done(struct prov_job *j)
{
	char a[INET6_ADDRSTRLEN];
	struct prov_target *t;
	int i, f, src;

	for (i = 0; i < T_MAX; i++) {
		t = &j->t[i];
		prov_ntop(t->family, t->addr, a, sizeof(a));
		for (src = SRC_NS; src <= SRC_HOST; src++) {
			if (t->wrong[src]) {
				prov_job_error(j, -EADDRINUSE, "address %s %s", a,
					  t->where[src]);
				return;
			}
		}
		if (t->host_side ? (!t->here && t->local) : t->local) {
			prov_job_error(j, -EADDRINUSE, "address %s is already "
				  "assigned on the host", a);
			return;
		}
	}
	for (f = 0; f < 2; f++) {
		if (j->def_other[f] && !j->def_ok[f]) {
			prov_job_error(j, -EEXIST, "the namespace has another %s "
				  "default route (%s)", f ? "IPv6" : "IPv4",
				  j->def_where[f]);
			return;
		}
	}

	j->step = S_APPLY;
	if (!(j->host.flags & IFF_UP))
		prov_send_set_up(j, true, j->host.index, j->spec.host_if);
	if (!j->t[T_H4].here)
		prov_send_add_addr(j, T_H4, j->host.index, j->spec.host_if);
	if (!j->t[T_H6].here)
		prov_send_add_addr(j, T_H6, j->host.index, j->spec.host_if);
	if (!(j->lo->flags & IFF_UP))
		prov_send_set_up(j, false, j->lo->index, "lo");
	if (!(j->peer->flags & IFF_UP))
		prov_send_set_up(j, false, j->peer->index, j->spec.ns_if);
	if (!j->t[T_N4].here)
		prov_send_add_addr(j, T_N4, j->peer->index, j->spec.ns_if);
	if (!j->t[T_N6].here)
		prov_send_add_addr(j, T_N6, j->peer->index, j->spec.ns_if);
	for (f = 0; f < 2; f++)
		if (!j->def_ok[f])
			prov_send_add_default(j, f);
}

/* Failed: take back what this job created, then report the first error. */
static void step_undo(struct prov_job *j)
{
	j->step = S_UNDO;
	if (j->veth_created)
		prov_work_del_link(j, R_BEST_EFFORT, true);
}

static void step_dprobe_done(struct prov_job *j)
{
	bool ours = j->host_found && j->host.veth && j->host.has_nsid &&
		    j->nsid >= 0 && j->host.nsid == j->nsid;

	/* our reference must not keep the namespace alive */
	prov_ns_close(j);
	j->rm_file = true;
	j->step = S_DFILE;
	if (ours && prov_gone_watch(j) < 0) {
		j->step = S_DDEL;
		prov_work_del_link(j, R_DEL, false);
	}
}

/* The file is gone: wait for the kernel to take the veth, or make it. */
static enum prov_next step_dgone(struct prov_job *j)
{
	struct prov *prov = j->prov;
	uint64_t now, from, until;

	j->step = S_DGONE;
	if (j->gone)
		return PLAN_FINISH;
	if (j->recheck) {
		j->recheck = false;
		j->step = S_DCHECK;
		prov_work_check_link(j, false);
		return PLAN_GO;
	}
	now = prov_now_ms();
	from = j->gone_since > prov->gone_progress ? j->gone_since
						   : prov->gone_progress;
	until = from + (j->dying ? PROV_GONE_DEAD_MS : PROV_GONE_WAIT_MS);
	if (now >= until) {
		j->step = S_DFORCE;
		prov_work_check_link(j, true);
		return PLAN_GO;
	}
	j->sleep_ms = (unsigned)(until - now);
	return PLAN_PARK;
}

enum prov_next prov_plan_next(struct prov_job *j)
{
	if (j->err && j->step != S_UNDO) {
		if (j->op == OP_UP && (j->veth_created || j->ns_created)) {
			step_undo(j);
			return PLAN_GO;
		}
		return PLAN_FINISH;
	}
	switch (j->step) {
	case S_NS:
		return step_ns(j);
	case S_PROBE:
		step_probe_done(j);
		return PLAN_GO;
	case S_CREATE:
		j->veth_created = true;
		start_probe(j);
		return PLAN_GO;
	case S_INSPECT:
		step_inspect_done(j);
		return PLAN_GO;
	case S_UNDO:
		if (j->ns_created) {
			prov_ns_undo(j);	/* on the worker */
			return PLAN_GO;
		}
		return PLAN_FINISH;
	case S_DPROBE:
		step_dprobe_done(j);
		return PLAN_GO;
	case S_DDEL:
		j->step = S_DFILE;
		return PLAN_GO;
	case S_APPLY:
		return PLAN_FINISH;
	case S_DFILE:
		j->step = S_DDONE;
		prov_ns_remove(j);
		return PLAN_GO;
	case S_DDONE:
		if (!j->watched)
			return PLAN_FINISH;
		/* the file is gone: answered now, then wait for the veth */
		j->gone_since = prov_now_ms();
		j->step = S_DGONE;
		return PLAN_ANSWER;
	case S_DGONE:
	case S_DCHECK:
		return step_dgone(j);
	case S_DFORCE:
		return PLAN_FINISH;
	}
	return PLAN_FINISH;
}
