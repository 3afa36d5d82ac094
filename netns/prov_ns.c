/* SPDX-License-Identifier: MIT */
/* prov_ns: step NS, the namespace file - open, create, remove.
 *
 * Theory of operation
 *
 * The file itself is handled by the provisioner's privileged calls
 * (struct prov_privops: netns/nsops.c, directly or through the helper),
 * on the worker, since creating a namespace blocks for milliseconds.  What
 * is decided here:
 *
 *   NS       ask for DIR/NAME, created if missing when provisioning.  An
 *            empty file may be `ip netns add` half-way (the call says
 *            EAGAIN): look again, PROV_NS_RETRIES times, PROV_NS_RETRY_MS
 *            apart; one that stays is the leftover of a crash between the
 *            file and the mount, replaced (provisioning) or removed
 *            (deprovisioning: NSOPS_STALE).  Deprovisioning a name with no
 *            file: nothing to remove.
 *
 * Removal (deprovision, or undo of a namespace this job created) is `ip
 * netns del`: umount2(MNT_DETACH), then unlink, on the worker too.  A
 * job's handle is let go of as soon as it is not needed: a reference to
 * a namespace keeps it alive.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "netns/nsops.h"
#include "netns/prov_int.h"

int prov_ns_open(struct prov_job *j)
{
	unsigned flags = 0;

	if (j->nsfd >= 0 || j->ns_missing)
		return 0;
	if (j->ns_again) {
		/* an empty file: look again later */
		j->ns_again = false;
		return PROV_NS_LATER;
	}
	if (j->op == OP_UP)
		flags |= NSOPS_CREATE;
	if (j->ns_tries > PROV_NS_RETRIES)
		flags |= NSOPS_STALE;	/* it stayed empty: a leftover */
	prov_work_ns_open(j, flags);
	return j->err ? j->err : 1;
}

void prov_ns_close(struct prov_job *j)
{
	if (j->nsfd < 0)
		return;
	j->prov->ops.ns_close(j->prov->ops.ctx, false, j->nsfd);
	j->nsfd = -1;
}

void prov_ns_undo(struct prov_job *j)
{
	if (!j->ns_created)
		return;
	j->ns_created = false;
	prov_ns_close(j);
	prov_work_ns_remove(j);
}

void prov_ns_remove(struct prov_job *j)
{
	if (j->nsfd < 0 && !j->rm_file)
		return;		/* nothing there */
	prov_ns_close(j);
	prov_work_ns_remove(j);	/* umount2 and unlink block: on the worker */
}

struct nl *prov_nl_open(struct prov *prov, int handle, int *err)
{
	uint32_t portid;
	int fd = prov->ops.nl_socket(prov->ops.ctx, false, handle, &portid);

	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	return nl_open_fd(prov->base, fd, portid, err);
}
