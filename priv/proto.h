/* SPDX-License-Identifier: MIT */
/* proto: the messages between the engine and the privileged helper.
 *
 * The engine (unprivileged, under seccomp, talks to tenants) asks; the
 * helper (root with three capabilities, talks to nobody else) answers.
 * One SOCK_SEQPACKET socketpair per engine thread that asks (the event
 * loop's, the provisioning worker's): one request, then its answer, in
 * turn.  Every message is one datagram of a fixed layout: a header (type,
 * length), then the body of its type.  Lengths are exact, strings are
 * NUL-terminated inside their arrays, numbers are checked against their
 * ranges by priv_decode() before anything else looks at them.
 * Descriptors travel in answers only, as SCM_RIGHTS, in the order the
 * answer lists them.
 *
 *   LISTEN     ns (or the host's), addresses -> the namespace's identity,
 *              one listening TCP socket or bound UDP socket per address
 *              (or why not)
 *   NS_OPEN    a namespace to provision: open it (or create it as `ip
 *              netns add` does, or replace a stale placeholder: flags of
 *              netns/nsops.h) -> a handle, its identity
 *   NS_REMOVE  unmount and remove its file, as `ip netns del`
 *   NS_CLOSE   forget a handle
 *   NL_OPEN    an rtnetlink socket in the host's namespace or a handle's,
 *              behind the gate -> one end of a socketpair, its port id
 *   FILE_WRITE the hosts or the state file, its content in a memfd passed
 *              with the request (the one request that carries a descriptor)
 *
 * Pure: no I/O here, no allocation, no logging (fuzzed in t/fuzz/).
 */
#ifndef NSRELAY_PRIV_PROTO_H
#define NSRELAY_PRIV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PRIV_NAME_MAX		255	/* a namespace's file name */
#define PRIV_LISTEN_MAX		64	/* addresses in one LISTEN */
#define PRIV_WHY_MAX		160

enum priv_type {
	PRIV_LISTEN = 1,
	PRIV_NS_OPEN,
	PRIV_NS_REMOVE,
	PRIV_NS_CLOSE,
	PRIV_NL_OPEN,
	PRIV_FILE_WRITE,
	PRIV_REPLY = 64,
};

/* The step that failed, in answers (priv_step_name()). */
enum priv_step {
	PRIV_STEP_NONE,
	PRIV_STEP_SOCKET,
	PRIV_STEP_SETSOCKOPT,
	PRIV_STEP_BIND,
	PRIV_STEP_LISTEN,
	PRIV_STEP_LIMIT,	/* the descriptor limit */
	PRIV_STEP_MAX
};

struct priv_hdr {
	uint32_t type;
	uint32_t len;		/* of the whole message */
};

/* An address to listen on: what a struct sockaddr_in/_in6 says. */
struct priv_addr {
	uint16_t family;	/* AF_INET, AF_INET6 */
	uint16_t port;		/* host order, 1..65535 */
	uint32_t scope_id;
	uint8_t addr[16];	/* 4 bytes for AF_INET */
	uint32_t dgram;		/* 0: a listening TCP socket; 1: a bound
				 * UDP socket (protocol: udp) */
};

struct priv_listen {
	struct priv_hdr h;
	uint32_t host;		/* 1: in the host's namespace (ns ignored) */
	uint32_t n;		/* 1..PRIV_LISTEN_MAX */
	char ns[PRIV_NAME_MAX + 1];
	struct priv_addr addr[];	/* n of them */
};

/* NS_OPEN, NS_REMOVE */
struct priv_ns {
	struct priv_hdr h;
	uint32_t flags;		/* NS_OPEN: NSOPS_CREATE | NSOPS_STALE; else 0 */
	char ns[PRIV_NAME_MAX + 1];
};

/* NS_CLOSE, NL_OPEN (handle 0: the host's namespace) */
struct priv_handle {
	struct priv_hdr h;
	uint32_t handle;
};

enum priv_file { PRIV_FILE_HOSTS, PRIV_FILE_STATE, PRIV_FILE_MAX };

struct priv_file_write {
	struct priv_hdr h;
	uint32_t which;		/* enum priv_file */
};

/* What the memfd of a FILE_WRITE holds: records of one size, nothing else.
 * The hosts file: a user and its namespace's addresses (the helper writes
 * "ADDRESS USER[.DOMAIN]" lines, with the domain it read at start); the
 * state file: users. */
struct priv_host_rec {
	char user[PRIV_NAME_MAX + 1];
	uint8_t v4[4];
	uint8_t v6[16];
};
struct priv_state_rec {
	char user[PRIV_NAME_MAX + 1];
};

/* Every answer.  err: 0 or -errno for the request as a whole (LISTEN: the
 * namespace itself; then why says what).  LISTEN: res[i] for each address
 * (0: its socket is among the descriptors, in order), dev and ino the
 * namespace's identity.  NS_OPEN: handle, dev, ino, created.
 * NL_OPEN: portid, and the socketpair's end as the descriptor. */
struct priv_reply {
	struct priv_hdr h;
	int32_t err;
	uint32_t handle;
	uint64_t dev, ino;
	uint32_t portid;
	uint32_t created;
	uint32_t n;		/* LISTEN: entries of res */
	char why[PRIV_WHY_MAX];	/* a reason, for the log; "" */
	struct {
		int32_t err;
		uint32_t step;	/* enum priv_step */
	} res[PRIV_LISTEN_MAX];
};

/* A decoded request: one of the bodies, checked. */
union priv_req {
	struct priv_hdr h;
	struct priv_listen listen;
	struct priv_ns ns;
	struct priv_handle handle;
	struct priv_file_write file;
	/* room for the largest LISTEN */
	char max[sizeof(struct priv_listen) +
		 PRIV_LISTEN_MAX * sizeof(struct priv_addr)];
};

/* Size of a LISTEN of N addresses. */
static inline size_t priv_listen_size(uint32_t n)
{
	return sizeof(struct priv_listen) + n * sizeof(struct priv_addr);
}

/* Check the request of LEN bytes at BUF and copy it to OUT.  Returns its
 * type, or -EBADMSG with a reason in *why (a static string): too short,
 * a length that is not its type's, an unknown type, a string without its
 * NUL, a namespace name that is not a file name of the directory (empty,
 * ".", "..", a '/'), a count or an address family, port or length out of
 * range, an unknown file.  Pure. */
int priv_decode(const void *buf, size_t len, union priv_req *out,
		const char **why);

/* Check an answer of LEN bytes to a request of type TYPE (the engine's
 * side: it trusts the helper, but not a short or garbled datagram).
 * 0 or -EBADMSG. */
int priv_decode_reply(const void *buf, size_t len, struct priv_reply *out);

/* The address of A as a sockaddr: its length, 0 if A is not valid. */
socklen_t priv_addr_to_sa(const struct priv_addr *a,
			  struct sockaddr_storage *ss);
/* ... and back; -EAFNOSUPPORT for another family. */
int priv_addr_from_sa(const struct sockaddr *sa, socklen_t len,
		      struct priv_addr *a);

const char *priv_step_name(enum priv_step s);
const char *priv_type_name(uint32_t type);
#endif
