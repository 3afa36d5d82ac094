/* SPDX-License-Identifier: MIT */
/* dgram: datagram services (protocol: udp), relayed per flow.
 *
 * A port is one bound UDP socket in a namespace (a listener's); a flow is
 * one client address and port on it, with a connected socket of its own
 * on the host towards a server of the service, so that the server's
 * answers go back to the right client without reading the payload.
 * Datagrams are relayed whole, one for one.  A flow ends after its
 * service's idle_timeout without a datagram either way, when the server
 * answers with an ICMP error (port unreachable), or when its port closes.
 *
 * Like the relay below the listeners, this knows nothing of namespaces
 * or limits: a flow comes from a struct relay_origin (counts, service,
 * closed() once per flow), and whether a new flow may start is the
 * port's admit function's to say. */
#ifndef NSRELAY_DGRAM_H
#define NSRELAY_DGRAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "engine/relay.h"

struct event_base;
struct dgram_set;
struct dgram_port;
struct upstream_set;

/* Datagrams a port reads in one loop turn, and a flow from its server:
 * what is left waits for the next turn, after every other ready event
 * (the events are level-triggered), so one namespace's burst puts at most
 * this much in front of another's datagram. */
#define DGRAM_QUANTUM		16

/* May a new flow start?  OK: yes, and it is counted as the origin's (the
 * origin's closed() runs when it ends); ID says what to bind its socket
 * to.  FULL: the namespace is at a limit of live flows: the port's
 * least recently used flow ends, and the question is asked again with
 * IN_PLACE (the new flow takes the place of the one that ended: the
 * namespace's count is where it was, and only what is not a count of
 * flows may refuse it).
 * NO: not now (out of descriptors, a rate limit): the datagram is
 * dropped, counted with the reason DROP. */
enum dgram_admit { DGRAM_ADMIT_OK, DGRAM_ADMIT_FULL, DGRAM_ADMIT_NO };
typedef enum dgram_admit (*dgram_admit_fn)(void *arg,
					    const struct sockaddr *peer,
					    bool in_place,
					    struct relay_ident *id,
					    enum relay_drop *drop);

struct dgram_set *dgram_set_new(struct event_base *base);
/* End every flow, free.  NULL is fine. */
void dgram_set_free(struct dgram_set *set);

/* Servers as for the relay (relay_set_upstreams); NULL: a service's
 * first. */
void dgram_set_upstreams(struct dgram_set *set, struct upstream_set *ups);

/* Live flows: one descriptor each. */
uint64_t dgram_count(const struct dgram_set *set);

/* The services' idle timeouts may have changed (a reload): each flow's
 * timer counts from its last datagram with its service's timeout now. */
void dgram_set_retime(struct dgram_set *set);

/* The bound UDP socket FD (non-blocking) of origin O, watched from now
 * on; new flows ask ADMIT(ARG, ...).  Takes FD.  NULL on ENOMEM (FD is
 * closed). */
struct dgram_port *dgram_port_new(struct dgram_set *set,
				  struct relay_origin *o, int fd,
				  dgram_admit_fn admit, void *arg);

/* Watch the port's socket or not (a descriptor shortage, an error
 * pause): its flows' answers still go back meanwhile. */
void dgram_port_enable(struct dgram_port *p, bool on);

/* Close the socket, end its flows (SHUTDOWN: nothing can answer them
 * any more) and free.  NULL is fine. */
void dgram_port_free(struct dgram_port *p);
#endif
