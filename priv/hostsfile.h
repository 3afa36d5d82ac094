/* SPDX-License-Identifier: MIT */
/* hostsfile: write the hosts-format file naming provisioned namespaces,
 * safely, in a directory users cannot write. */
#ifndef NSRELAY_HOSTSFILE_H
#define NSRELAY_HOSTSFILE_H

#include <netinet/in.h>
#include <stddef.h>

struct hostsfile_entry {
	const char *name;		/* user name */
	struct in_addr v4;
	struct in6_addr v6;
};

/* Replace PATH with "ADDRESS NAME[.DOMAIN]" lines for the N entries.
 * The directory must be owned by root and not writable by group or others
 * (-EPERM otherwise); the new file is made there with O_EXCL|O_NOFOLLOW,
 * owned by root where the process may chown, mode 0644, synced, and renamed
 * over PATH, so readers see the old or the new file, never half of one,
 * and no symlink planted in the directory is ever followed.  0 or -errno. */
int hostsfile_write(const char *path, const struct hostsfile_entry *e,
		    size_t n, const char *domain);
/* The same for any text: LINES, NULL-terminated, one per line. */
int hostsfile_write_lines(const char *path, const char *const *lines);
#endif
