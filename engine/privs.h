/* SPDX-License-Identifier: MIT */
/* privs: run as an unprivileged user that keeps only the capabilities the
 * relay needs. */
#ifndef NSRELAY_PRIVS_H
#define NSRELAY_PRIVS_H

#include <stdbool.h>

/* Look USER up: its uid must exist and not be 0.  0 or -errno (-ENOENT
 * unknown user, -EPERM root). */
int privs_check_user(const char *user);

/* Started as root: become USER (uid, gid, supplementary groups) and keep
 * only CAP_SYS_ADMIN (setns) and CAP_NET_BIND_SERVICE (ports below 1024
 * inside namespaces) in the permitted and effective sets, and with
 * PROVISIONING also CAP_NET_ADMIN (links, addresses, routes) and
 * CAP_DAC_OVERRIDE (mount points in the root-owned namespace directory,
 * the hosts file) and CAP_CHOWN (the hosts and state files it writes are
 * given to root); the bounding set loses everything else and
 * no_new_privs is set.  Started as another user
 * (systemd User= with AmbientCapabilities=): check those capabilities are
 * there.  Fatal on any failure: the daemon never serves as root. */
void privs_drop(const char *user, bool provisioning);
#endif
