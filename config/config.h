/* SPDX-License-Identifier: MIT */
/* config: the YAML service map, parsed into a struct config and validated.
 *
 * Pure code: no libevent, no sockets, no logging, no globals. The engine
 * calls config_load(); every problem found is returned as one message of the
 * form "FILE:LINE:COL: KEY.PATH: what is wrong", and the engine decides what
 * to do with them.
 */
#ifndef NSRELAY_CONFIG_H
#define NSRELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netns/pool.h"		/* struct prov_pool: pure, no kernel */

#define CONFIG_DEFAULT_NETNS_DIR	"/run/netns"
#define CONFIG_DEFAULT_USER		"nsrelay"
#define CONFIG_DEFAULT_CONNECT_MS	(5 * 1000ULL)
#define CONFIG_DEFAULT_IDLE_MS		(60 * 60 * 1000ULL)
#define CONFIG_DEFAULT_FIN_MS		(60 * 1000ULL)
/* A datagram flow ends after this long without a datagram either way
 * (a service's idle_timeout, when it says none; the top-level
 * timeouts: are for streams). */
#define CONFIG_DEFAULT_UDP_IDLE_MS	(30 * 1000ULL)
#define CONFIG_DEFAULT_RETRY_MAX_MS	(60 * 1000ULL)
#define CONFIG_DEFAULT_UID_BASE		1000
#define CONFIG_DEFAULT_CONTROL		"/run/nsrelay/control.sock"
#define CONFIG_MAX_DURATION_MS		(30ULL * 24 * 60 * 60 * 1000)
/* No fixed limits by default: namespaces share the loop and the
 * descriptors fairly (engine/listener.c); an admin may set caps. */
#define CONFIG_DEFAULT_LIMIT_CONNS	0	/* live, per namespace */
#define CONFIG_DEFAULT_LIMIT_RATE	0	/* new per second, per ns */
#define CONFIG_DEFAULT_LIMIT_BURST	0	/* 2 x the rate when set */
#define CONFIG_LIMIT_MAX		1000000	/* conns and rate below this */
#define CONFIG_DEFAULT_SHUTDOWN_GRACE_MS (5 * 1000ULL)
#define CONFIG_DEFAULT_CONTROL_MODE	0600
/* Servers of one service: held in the service itself (a copy of it is a
 * complete copy), so a fixed bound. */
#define CONFIG_MAX_UPSTREAMS		16
/* Health checks, as HAProxy's: a check every 2 s; 1 s to answer (never
 * longer than the interval); 2 good checks bring a server back, 3
 * failures in a row take it out. */
#define CONFIG_DEFAULT_CHECK_INTERVAL_MS (2 * 1000ULL)
#define CONFIG_DEFAULT_CHECK_TIMEOUT_MS	(1 * 1000ULL)
#define CONFIG_DEFAULT_CHECK_RISE	2
#define CONFIG_DEFAULT_CHECK_FALL	3
#define CONFIG_CHECK_COUNT_MAX		100	/* rise and fall at most */

/* A socket address as written in the file, parsed.  For AF_UNIX, sa holds a
 * sockaddr_un and len covers the path and its NUL.  An upstream may also
 * be a host name and a port: then sa.ss_family is AF_UNSPEC, len 0, text
 * "name:port" (the name in lower case) and port the port; the engine
 * resolves it. */
struct config_sockaddr {
	struct sockaddr_storage sa;
	socklen_t len;
	char text[128];		/* canonical: "127.0.0.1:3306", "[::1]:3306",
				 * "unix:/run/x.sock", "db1.example.org:3306" */
	unsigned port;		/* AF_UNSPEC: the port of the name */
	unsigned line, col;	/* where it was written (1-based) */
};

/* Connection limits; 0 = no limit.  At the top level they apply to each
 * namespace: live connections, new connections a second (a token bucket
 * refilled at rate a second, holding at most burst).  In a service only
 * conns is used: a cap on that service's live connections in each
 * namespace, within the namespace's (0: only the namespace's applies). */
struct config_limits {
	unsigned conns;
	unsigned rate;
	unsigned burst;		/* >= 1 when rate > 0; 0 when rate is 0 */
};

/* Which server of a service a new connection goes to. */
/* proxy_protocol: the header sent to the upstream first (the values are
 * engine/proxyhdr.h's enum proxyhdr_version). */
enum config_proxy_protocol {
	CONFIG_PROXY_OFF,
	CONFIG_PROXY_V1,
	CONFIG_PROXY_V2,
};

/* source: the upstream socket's own address.  DEFAULT: the host's
 * choice; NAMESPACE: for a namespace nsrelayd provisioned, the host end
 * of its veth (TCP upstreams only). */
enum config_source {
	CONFIG_SOURCE_DEFAULT,
	CONFIG_SOURCE_NAMESPACE,
};

/* protocol: what the listen addresses take.  TCP: streams, relayed as
 * connections; UDP: datagrams, relayed per flow (each client address and
 * port of a namespace has its own upstream socket). */
enum config_protocol {
	CONFIG_PROTO_TCP,
	CONFIG_PROTO_UDP,
};

enum config_balance {
	CONFIG_BALANCE_FIRST,		/* the first healthy, in file order */
	CONFIG_BALANCE_ROUNDROBIN,	/* the healthy ones in turn */
	CONFIG_BALANCE_LEASTCONN,	/* the healthy one with fewest live */
};

/* The active health check of a service's servers. */
enum config_check_proto {
	CONFIG_CHECK_NONE,	/* passive only: what connections see */
	CONFIG_CHECK_TCP,	/* a connect */
	CONFIG_CHECK_MYSQL,	/* the handshake packet, protocol 10 */
	CONFIG_CHECK_SMTP,	/* a 220 greeting */
	CONFIG_CHECK_IMAP,	/* "* OK" or "* PREAUTH" */
};

struct config_check {
	enum config_check_proto protocol;	/* default NONE */
	uint64_t interval_ms;	/* between two checks of a server; also how
				 * long a down server rests without checks */
	uint64_t timeout_ms;	/* for one check; <= interval_ms */
	unsigned rise, fall;	/* 1 .. CONFIG_CHECK_COUNT_MAX */
};

struct config_service {
	char *name;
	enum config_protocol protocol;	/* default TCP */
	struct config_sockaddr *listen;	/* AF_INET or AF_INET6 only */
	size_t n_listen;
	struct config_sockaddr upstream;	/* upstreams[0], for messages */
	/* AF_INET, AF_INET6 or AF_UNIX, no two the same, in file order */
	struct config_sockaddr upstreams[CONFIG_MAX_UPSTREAMS];
	size_t n_upstreams;		/* >= 1 */
	enum config_balance balance;	/* default FIRST */
	enum config_proxy_protocol proxy_protocol;	/* default OFF */
	enum config_source source;	/* default DEFAULT */
	struct config_check check;
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t fin_timeout_ms;
	char **namespaces;	/* names this service goes into; */
	size_t n_namespaces;	/* 0 = every namespace of the config */
	struct config_limits limits;	/* conns only; default 0 */
	unsigned line, col;
};

/* Where a value was written, for messages about it made after parsing. */
struct config_loc {
	unsigned line, col;
};

/* A user whose namespace is provisioned at start. */
struct config_prov_user {
	char *name;
	long index;		/* -1: uid - uid_base */
	struct config_loc at;
};

/* What a reload does with users that leave provision.users. */
enum config_removed {
	CONFIG_REMOVED_KEEP,		/* their namespaces stay (default) */
	CONFIG_REMOVED_DEPROVISION,	/* their namespaces are removed */
};

/* provision: present when the daemon creates namespaces itself.  Pools and
 * templates are checked while loading (a bad one is an ordinary error with
 * its position) and land in pool, ready for the provisioner: defaults where
 * the file says nothing, uid_base included. */
struct config_provision {
	bool enabled;
	struct config_prov_user *users;
	size_t n_users;
	uint32_t uid_base;		/* default CONFIG_DEFAULT_UID_BASE */
	struct prov_pool pool;		/* templates, pools, uid_base */
	char *control;		/* when enabled: a copy of control.path (the
				 * old key provision.control is an alias) */
	char *hosts_file;	/* NULL: none */
	char *domain;		/* suffix in hosts_file; NULL: none */
	enum config_removed removed;	/* default CONFIG_REMOVED_KEEP */
};

/* dns: how upstream host names are resolved. */
#define CONFIG_DEFAULT_DNS_REFRESH_MS	(30 * 1000ULL)
struct config_dns {
	struct config_sockaddr *servers;	/* none: /etc/resolv.conf's */
	size_t n_servers;
	uint64_t refresh_ms;	/* at most this long between resolutions;
				 * the answer's TTL if shorter */
};

/* control: the control socket (a unix socket on the host). */
struct config_control {
	char *path;		/* default CONFIG_DEFAULT_CONTROL */
	char *group;		/* group of the socket; NULL: none */
	unsigned mode;		/* 0600 (default), 0620, 0640 or 0660 */
};

/* metrics: a TCP endpoint on the host for the daemon's figures; off by
 * default. */
struct config_metrics {
	bool enabled;			/* the section has listen: */
	struct config_sockaddr listen;	/* AF_INET or AF_INET6 */
};

struct config {
	char *path;		/* file name as given, used in messages */
	char *netns_dir;	/* default CONFIG_DEFAULT_NETNS_DIR */
	bool ns_all;		/* every namespace found in netns_dir */
	char *ns_match;		/* glob a found name must match; NULL: any */
	char **namespaces;	/* explicitly listed names */
	size_t n_namespaces;
	char *user;		/* identity the upstreams see */
	uint64_t retry_max_ms;	/* ceiling of the bind retry backoff */
	struct config_service *services;
	size_t n_services;
	struct config_provision provision;
	struct config_limits limits;	/* per namespace; defaults above */
	uint64_t shutdown_grace_ms;	/* 0: stop at once; default 5000 */
	struct config_control control;
	struct config_metrics metrics;
	struct config_dns dns;
};

/* A list of error messages, each "FILE:LINE:COL: PATH: message". */
struct config_errors {
	char **msg;
	size_t n;
};

/* Parse and validate LEN bytes of YAML.  NAME is used in messages.
 * Returns 0 and sets *out (caller frees with config_free()), or -1 with
 * *out NULL and every problem found appended to ERRS (at least one). */
int config_parse_buffer(const char *name, const char *buf, size_t len,
			struct config **out, struct config_errors *errs);

/* Read PATH and config_parse_buffer() it.  An unreadable file is one error
 * "PATH: strerror", anything but a regular file (a FIFO, a device, a
 * directory) "PATH: not a regular file", without blocking.  Same return
 * convention. */
int config_load(const char *path, struct config **out,
		struct config_errors *errs);

/* Checks that need the host, offered to the engine (--check and start).
 *
 * config_check_users(): each provision.users entry, looked up with UID_OF
 * (getpwnam in the engine; returns 0 and sets *uid, -ENOENT for no such
 * user, or another -errno).  Refused: uid 0, and a uid below
 * provision.uid_base for a user without an explicit index (its index would
 * be negative).  A user that does not exist is not checked.  Each problem
 * is appended to ERRS as "FILE:LINE:COL: provision.users[i]: ...".
 * Returns the number of problems (0: fine), or -ENOMEM. */
int config_check_users(const struct config *cfg,
		       int (*uid_of)(const char *name, uint32_t *uid,
				     void *arg),
		       void *arg, struct config_errors *errs);

/* How many listening sockets CFG asks for: for each service, its listen
 * addresses times the namespaces it goes into.  Exact where namespaces are
 * listed (the service's own list, or namespaces.names without all: true);
 * a service that goes into every namespace of an all: true config counts
 * the listed names plus N_NAMESPACES others (what the engine expects to
 * find besides them: names in netns_dir that config_serves_ns() accepts,
 * provisioned users).  Saturates at SIZE_MAX. */
size_t config_listener_count(const struct config *cfg, size_t n_namespaces);

/* Compare config_listener_count() with LIMIT descriptors (RLIMIT_NOFILE
 * less what the daemon keeps for itself): over it, appends "FILE: N
 * listening sockets ... do not fit ..." to ERRS and returns 1; else 0.
 * -ENOMEM if the message cannot be made. */
int config_check_listeners(const struct config *cfg, size_t n_namespaces,
			   uint64_t limit, struct config_errors *errs);

/* Does service S go into the namespace called NAME under CFG's rules?
 * (It must also be one of the namespaces the config serves.) */
bool config_service_in_ns(const struct config_service *s, const char *name);

/* Is NAME a namespace CFG serves (listed, or, when ns_all, any name that
 * matches ns_match)? */
bool config_serves_ns(const struct config *cfg, const char *name);

/* Is NAME usable as a file name in netns_dir ("", ".", "..", "/" refused)? */
bool config_valid_ns_name(const char *name);

/* The file of users provisioned on request: "provisioned" next to the
 * control socket CONTROL.  Allocated; NULL on ENOMEM. */
char *config_state_path(const char *control);

/* Parse a duration "250ms", "5s", "30m", "1h30m", "2d".  0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *ms);

/* Parse "IPv4:port", "[IPv6]:port"; with ALLOW_UNIX also "unix:/path" and
 * "/path".  0, or -EINVAL with a static reason in *why. */
int config_parse_sockaddr(const char *s, bool allow_unix,
			  struct config_sockaddr *out, const char **why);

/* Parse "name:port", a DNS host name (letters, digits, '-', dots; at most
 * CONFIG_HOST_MAX bytes; not an address) and a port, into OUT as
 * AF_UNSPEC.  0, or -EINVAL with *why. */
#define CONFIG_HOST_MAX		120
int config_parse_hostport(const char *s, struct config_sockaddr *out,
			  const char **why);

/* The explicit provision index of USER, or -1 (derive it from the uid). */
long config_provision_index(const struct config *cfg, const char *user);

/* ---- reload (diff.c) ---------------------------------------------------- */

/* Names of the values of balance: and check.protocol ("first", "mysql"). */
const char *config_balance_name(enum config_balance b);
/* "tcp" or "udp" */
const char *config_protocol_name(enum config_protocol p);
/* "off", "v1" or "v2" */
const char *config_proxy_name(enum config_proxy_protocol p);
/* "default" or "namespace" */
const char *config_source_name(enum config_source s);
const char *config_check_name(enum config_check_proto p);

/* Would service A serve exactly as B does?  Same protocol, servers (in
 * order), balance, check, timeouts,
 * limits, namespaces (as a set) and listen addresses (as a set).  The
 * names and the positions in the file are not compared: the caller pairs
 * services by name. */
bool config_service_equal(const struct config_service *a,
			  const struct config_service *b);

/* What a reload from one config to another changes.  Services are paired by
 * name (changed: in both, not config_service_equal()); namespaces are the
 * entries of namespaces.names; users are those of provision.users (none when
 * provision is off), by name.  The user names are copies, owned by the
 * diff. */
struct config_diff {
	size_t n_services_added, n_services_removed, n_services_changed;
	size_t n_namespaces_added, n_namespaces_removed;
	char **users_added, **users_removed;	/* in file order */
	size_t n_users_added, n_users_removed;
};

/* Fill OUT with the difference from OLD to NEW.  0, or -ENOMEM with OUT
 * empty.  Free with config_diff_free(). */
int config_diff(const struct config *old, const struct config *new,
		struct config_diff *out);

/* Free what config_diff() put in D and empty it; NULL is fine. */
void config_diff_free(struct config_diff *d);

/* NULL if a reload may go from A to B, else the name of a key whose change
 * needs a restart (the first found): "namespaces.dir", "user",
 * "provision" (on or off), "control.path", "control.group",
 * "control.mode", and with provision on "provision.uid_base",
 * "provision.ipv4_pool", "provision.ipv6_pool", "provision.namespace",
 * "provision.host_interface", "provision.namespace_interface",
 * "provision.hosts_file", "provision.domain".  A static string. */
const char *config_fixed_key(const struct config *a, const struct config *b);

void config_free(struct config *cfg);		/* NULL is fine */
void config_errors_clear(struct config_errors *errs);
#endif
