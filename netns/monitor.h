/* SPDX-License-Identifier: MIT */
/* monitor: the host's link events (rtnetlink multicast), to notice a
 * provisioned namespace's veth that vanished. */
#ifndef NSRELAY_MONITOR_H
#define NSRELAY_MONITOR_H

/* A non-blocking, close-on-exec NETLINK_ROUTE socket subscribed to link
 * events in the calling thread's namespace.  The fd, or -errno. */
int monitor_open(void);

/* Read every pending message on FD and call GONE(ARG, ifname) for each
 * link deleted.  Returns 0, -ENOBUFS when the kernel dropped events because
 * the socket overran (the caller must resynchronise: what it missed is
 * unknown), or another -errno. */
int monitor_read(int fd, void (*gone)(void *arg, const char *ifname),
		 void *arg);
#endif
