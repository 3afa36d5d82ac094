/* SPDX-License-Identifier: MIT */
/* stats: the daemon's state as JSON and as Prometheus text.
 *
 * Theory of operation
 *
 * A walk takes a snapshot of the names of the namespaces served (their
 * order of arrival), then writes them one by one as its reader drains what
 * was written: the control socket steps it when a client's output has gone,
 * the metrics page once per loop turn.  Each step writes whole namespaces up
 * to a byte budget, so a document for thousands of namespaces never stalls
 * the loop and never sits whole in memory for a control client; a namespace
 * that goes away meanwhile is skipped, one that comes is not shown.  The
 * numbers of one namespace are read in one go, so they agree with each
 * other; across namespaces a document is not one instant.
 *
 * The model, per namespace: its services (the tally of each, shared by
 * its listeners there and by connections whose listener a reload closed:
 * listener.h), each with its listeners and their state; the kernel's counters
 * of its host veth when the daemon provisioned it (read before the walk
 * starts, from a cache at most STATS_VETH_MAX_AGE_MS old).  bytes_in counts
 * client -> upstream, bytes_out upstream -> client.  connect_failures are
 * connections closed as connect-failed; timeouts those closed by any of the
 * three timeouts (connect, idle, fin); "closed" has every close reason by
 * its name (relay_close_name()).
 *
 * Per service, not per namespace (upstream.c keeps them once for all
 * namespaces), in the document's head: its servers, each with its state,
 * live and total connections, failures, checks and the last check's
 * result, time and latency; in Prometheus the nsrelay_upstream_* families
 * labelled {service, server}.
 *
 * Per namespace too: the times its accepting was held back, by reason,
 * and the histogram of how long its clients waited to be accepted
 * (listener.h); the JSON also gives the upper bounds of the buckets
 * holding its median and 99th percentile.
 *
 * The Prometheus text groups every sample of a metric: the walk goes over
 * the namespaces once per metric family.  Connections closed by reason
 * list only the reasons seen in that service (the page stays a third of
 * the size, and the series count of a host with thousands of namespaces
 * does not grow nine-fold); connect_failures and timeouts are always
 * there.
 *
 * Strings are written in the daemon's display form (log.h: printable
 * UTF-8 as it is, the backslash, control characters and bytes that are
 * not UTF-8 as \xHH), then escaped for their format (a backslash and a
 * quote get a backslash, in JSON as in label values): a namespace name
 * with any bytes reads the same in the log, the JSON and the labels, and
 * the Prometheus page stays valid UTF-8.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/config.h"
#include "engine/daemon.h"
#include "engine/listener.h"
#include "engine/log.h"
#include "engine/nstable.h"
#include "engine/provisioned.h"
#include "engine/relay.h"
#include "engine/stats.h"
#include "engine/upstream.h"
#include "netns/linkstats.h"
#include "netns/pool.h"

/* a string literal, its length counted by the compiler */
#define ADD(out, lit)	evbuffer_add((out), (lit), sizeof(lit) - 1)

struct stats {
	struct daemon *d;
	struct linkstats *links;
};

/* Prometheus families, in the order written */
enum fam {
	F_INFO, F_START, F_GEN, F_RELOAD_OK, F_RELOAD_AT, F_NS, F_LST,
	F_LST_UP, F_CONNS,
	F_UP_UP, F_UP_ACTIVE, F_UP_CONNS, F_UP_FAILS, F_UP_CHECKS,
	F_UP_CHECKS_FAILED, F_UP_CHECK_SEC,
	F_FIRST_NS,
	F_ACTIVE = F_FIRST_NS, F_ACCEPTED, F_BYTES_IN, F_BYTES_OUT,
	F_CONNFAIL, F_TIMEOUTS, F_CLOSED, F_DGRAMS, F_DROPS, F_LISTENER_UP,
	F_WAIT, F_HELD,
	F_RX_BYTES, F_TX_BYTES, F_RX_PACKETS, F_TX_PACKETS,
	F_MAX
};

static const struct {
	const char *name, *type, *help;
} fams[F_MAX] = {
	[F_INFO] = { "nsrelay_info", "gauge",
		"Version of nsrelayd (always 1)." },
	[F_START] = { "nsrelay_start_time_seconds", "gauge",
		"When nsrelayd started, Unix time." },
	[F_GEN] = { "nsrelay_config_generation", "gauge",
		"Config generation: 1 at start, one more per good reload." },
	[F_RELOAD_OK] = { "nsrelay_last_reload_success", "gauge",
		"1 if the last reload succeeded (or none was made), else 0." },
	[F_RELOAD_AT] = { "nsrelay_last_reload_timestamp_seconds", "gauge",
		"When the last reload was made, Unix time (0: never)." },
	[F_NS] = { "nsrelay_namespaces", "gauge", "Namespaces served." },
	[F_LST] = { "nsrelay_listeners", "gauge",
		"Listening sockets wanted." },
	[F_LST_UP] = { "nsrelay_listeners_listening", "gauge",
		"Listening sockets open." },
	[F_CONNS] = { "nsrelay_connections", "gauge",
		"Connections and datagram flows relayed now." },
	[F_UP_UP] = { "nsrelay_upstream_up", "gauge",
		"1 if the server takes new connections (up or suspect), 0 if "
		"it is down." },
	[F_UP_ACTIVE] = { "nsrelay_upstream_connections_active", "gauge",
		"Connections relayed to the server now." },
	[F_UP_CONNS] = { "nsrelay_upstream_connections_total", "counter",
		"Connections sent to the server (every namespace)." },
	[F_UP_FAILS] = { "nsrelay_upstream_failures_total", "counter",
		"Failures of the server: connections that failed before its "
		"first byte, and failed checks." },
	[F_UP_CHECKS] = { "nsrelay_upstream_checks_total", "counter",
		"Active checks of the server that ended." },
	[F_UP_CHECKS_FAILED] = { "nsrelay_upstream_checks_failed_total",
		"counter", "Active checks of the server that failed." },
	[F_UP_CHECK_SEC] = { "nsrelay_upstream_check_duration_seconds",
		"gauge", "How long the server's last check took to its "
		"verdict (0: none yet)." },
	[F_ACTIVE] = { "nsrelay_connections_active", "gauge",
		"Connections of the service relayed now." },
	[F_ACCEPTED] = { "nsrelay_connections_accepted_total", "counter",
		"Connections accepted." },
	[F_BYTES_IN] = { "nsrelay_bytes_in_total", "counter",
		"Bytes relayed from clients to the upstream." },
	[F_BYTES_OUT] = { "nsrelay_bytes_out_total", "counter",
		"Bytes relayed from the upstream to clients." },
	[F_CONNFAIL] = { "nsrelay_connect_failures_total", "counter",
		"Upstream connections refused or unreachable." },
	[F_TIMEOUTS] = { "nsrelay_timeouts_total", "counter",
		"Connections closed by the connect, idle or fin timeout." },
	[F_CLOSED] = { "nsrelay_connections_closed_total", "counter",
		"Connections closed, by reason (reasons not seen yet are "
		"left out)." },
	[F_DGRAMS] = { "nsrelay_datagrams_total", "counter",
		"Datagrams relayed by a udp service, by direction (in: from "
		"clients to the upstream)." },
	[F_DROPS] = { "nsrelay_datagram_drops_total", "counter",
		"Datagrams a udp service dropped, by reason (reasons not seen "
		"yet are left out)." },
	[F_LISTENER_UP] = { "nsrelay_listener_up", "gauge",
		"1 if the listener is open, else 0." },
	[F_WAIT] = { "nsrelay_accept_wait_seconds", "histogram",
		"How long the namespace's clients waited to be accepted." },
	[F_HELD] = { "nsrelay_accept_held_total", "counter",
		"Times the namespace's accepting was held back, by reason "
		"(reasons not seen yet are left out)." },
	[F_RX_BYTES] = { "nsrelay_veth_receive_bytes_total", "counter",
		"Bytes received by the host end of the namespace's veth "
		"(sent by the namespace)." },
	[F_TX_BYTES] = { "nsrelay_veth_transmit_bytes_total", "counter",
		"Bytes sent by the host end of the namespace's veth "
		"(received by the namespace)." },
	[F_RX_PACKETS] = { "nsrelay_veth_receive_packets_total", "counter",
		"Packets received by the host end of the namespace's veth." },
	[F_TX_PACKETS] = { "nsrelay_veth_transmit_packets_total", "counter",
		"Packets sent by the host end of the namespace's veth." },
};

struct stats_walk {
	struct daemon *d;
	struct stats *s;
	enum stats_format fmt;
	char **names;
	size_t n, i;
	unsigned fam;			/* PROM: the family being written */
	unsigned up_fam;		/* PROM: the servers' family */
	bool up_first;			/* JSON: no service written yet */
	bool head, done;
	size_t emitted;			/* JSON: namespaces written */
	void (*ready)(void *arg);
	void *arg;
	struct event *defer;
	struct linkstats_wait *lw;
	struct evbuffer *out;		/* during a step */
	int err;			/* during a step: -ENOMEM */
};

struct stats *stats_new(struct daemon *d)
{
	struct stats *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->d = d;
	s->links = linkstats_new(d->base);
	if (!s->links) {
		free(s);
		return NULL;
	}
	return s;
}

void stats_free(struct stats *s)
{
	if (!s)
		return;
	linkstats_free(s->links);
	free(s);
}

/* ------------------------------------------------------------ escaping */

/* S in the display form (log.h), with the backslashes of its escapes and
 * any quote escaped once more: what JSON strings and Prometheus label
 * values both want.  A name reads the same in the log, in JSON once
 * decoded and in a label once unescaped. */
static void display_str(struct evbuffer *out, const char *s)
{
	size_t n = strlen(s), i = 0, run, took, k;
	char piece[4];

	while (i < n) {
		/* plain ASCII in one go */
		for (run = i; run < n && s[run] >= 0x20 && s[run] < 0x7f &&
		     s[run] != '"' && s[run] != '\\'; run++)
			;
		if (run > i) {
			evbuffer_add(out, s + i, run - i);
			i = run;
			continue;
		}
		if (s[i] == '"') {
			ADD(out, "\\\"");
			i++;
			continue;
		}
		k = log_escape_step(s + i, n - i, piece, &took);
		if (piece[0] == '\\')
			ADD(out, "\\");
		evbuffer_add(out, piece, k);
		i += took;
	}
}

static void json_str(struct evbuffer *out, const char *str)
{
	if (!str) {
		ADD(out, "null");
		return;
	}
	ADD(out, "\"");
	display_str(out, str);
	ADD(out, "\"");
}

static void label_str(struct evbuffer *out, const char *s)
{
	display_str(out, s);
}

static void json_time(struct evbuffer *out, const struct timeval *tv)
{
	if (!tv->tv_sec && !tv->tv_usec)
		ADD(out, "null");
	else
		evbuffer_add_printf(out, "%lld.%03ld", (long long)tv->tv_sec,
				    (long)tv->tv_usec / 1000);
}

/* ------------------------------------------------------------ the model */

static uint64_t timeouts(const struct relay_counters *c)
{
	return c->closed[RELAY_CLOSE_CONNECT_TIMEOUT] +
	       c->closed[RELAY_CLOSE_IDLE_TIMEOUT] +
	       c->closed[RELAY_CLOSE_FIN_TIMEOUT];
}

/* The settings of service T in G: a listener's that serves it, or, once a
 * reload removed them all, one whose connections live on.  NULL: none. */
static const struct config_service *tally_svc(const struct listener_group *g,
					      const struct listener_tally *t)
{
	const struct listener *l;

	TAILQ_FOREACH(l, &g->members, entry)
		if (l->tally == t)
			return l->origin.svc;
	TAILQ_FOREACH(l, &g->retired, entry)
		if (l->tally == t)
			return l->origin.svc;
	return NULL;
}

/* The host veth of NS, when the daemon provisioned it and its counters are
 * known. */
static const char *veth_of(const struct stats_walk *w, const char *ns,
			   struct linkstats_counters *c)
{
	const struct prov_spec *spec;
	const char *user;

	if (!w->d->provd)
		return NULL;
	spec = provisioned_find_ns(w->d->provd, ns, &user);
	if (!spec || linkstats_get(w->s->links, spec->host_if, c) < 0)
		return NULL;
	return spec->host_if;
}

static const char *state_name(enum listener_state s)
{
	switch (s) {
	case LISTENER_LISTENING: return "listening";
	case LISTENER_FAILED: return "error";
	default: return "closed";
	}
}

/* ------------------------------------------------------------ JSON */

static void json_upstreams(struct stats_walk *w);

static void json_head(struct stats_walk *w)
{
	struct daemon *d = w->d;
	struct evbuffer *out = w->out;
	struct timeval now, up;

	gettimeofday(&now, NULL);
	timersub(&now, &d->started, &up);
	evbuffer_add_printf(out, "{\"version\":");
	json_str(out, PACKAGE_VERSION);
	evbuffer_add_printf(out, ",\"pid\":%ld,\"started\":", (long)getpid());
	json_time(out, &d->started);
	evbuffer_add_printf(out, ",\"uptime\":%lld.%03ld,\"config\":{\"path\":",
			    (long long)up.tv_sec, (long)up.tv_usec / 1000);
	json_str(out, d->cfg_path);
	evbuffer_add_printf(out, ",\"generation\":%llu},\"last_reload\":",
			    (unsigned long long)d->generation);
	if (!d->reloaded.tv_sec) {
		ADD(out, "null");
	} else {
		evbuffer_add_printf(out, "{\"ok\":%s,\"at\":",
				    d->reload_ok ? "true" : "false");
		json_time(out, &d->reloaded);
		ADD(out, "}");
	}
	evbuffer_add_printf(out, ",\"stopping\":%s,\"counts\":{"
			    "\"namespaces\":%zu,\"listeners\":%u,"
			    "\"listening\":%u,\"connections\":%llu}",
			    d->stopping ? "true" : "false",
			    nstable_count(d->nst),
			    nstable_listener_count(d->nst),
			    nstable_listening_count(d->nst),
			    (unsigned long long)listener_set_conn_count(d->ls));
	json_upstreams(w);
}

static void prom_u64(struct evbuffer *out, uint64_t v);

/* One server in the JSON, under its service (upstream_foreach()). */
static void json_upstream(void *arg, const struct upstream_info *i,
			  bool first)
{
	struct stats_walk *w = arg;
	struct evbuffer *out = w->out;

	if (first) {
		evbuffer_add_printf(out, "%s{\"name\":", w->up_first ? "" :
				    "]},");
		w->up_first = false;
		json_str(out, i->service);
		evbuffer_add_printf(out, ",\"balance\":\"%s\",\"check\":\"%s\","
				    "\"proxy_protocol\":\"%s\","
				    "\"source\":\"%s\",\"upstreams\":[",
				    config_balance_name(i->balance),
				    config_check_name(i->check),
				    config_proxy_name(i->proxy),
				    config_source_name(i->source));
	} else {
		ADD(out, ",");
	}
	ADD(out, "{\"server\":");
	json_str(out, i->server);
	ADD(out, ",\"name\":");
	json_str(out, i->name);
	evbuffer_add_printf(out, ",\"state\":\"%s\",\"active\":%llu,"
			    "\"connections\":%llu,\"failures\":%llu,"
			    "\"checks\":%llu,\"checks_failed\":%llu,"
			    "\"last_check\":", upstream_state_name(i->state),
			    (unsigned long long)i->active,
			    (unsigned long long)i->connections,
			    (unsigned long long)i->failures,
			    (unsigned long long)i->checks,
			    (unsigned long long)i->checks_failed);
	if (!i->checked) {
		ADD(out, "null}");
		return;
	}
	evbuffer_add_printf(out, "{\"ok\":%s,\"at\":",
			    i->check_ok ? "true" : "false");
	json_time(out, &i->check_at);
	evbuffer_add_printf(out, ",\"latency\":%llu.%06llu,\"error\":",
			    (unsigned long long)(i->check_us / 1000000),
			    (unsigned long long)(i->check_us % 1000000));
	json_str(out, i->check_ok ? NULL : i->check_error);
	ADD(out, "}}");
}

/* Every service's servers: "services":[{name, balance, check,
 * proxy_protocol, source, upstreams:[...]}] (per service, not per namespace: health is kept once
 * for all of them). */
static void json_upstreams(struct stats_walk *w)
{
	ADD(w->out, ",\"services\":[");
	w->up_first = true;
	if (w->d->ups)
		upstream_foreach(w->d->ups, json_upstream, w);
	if (!w->up_first)
		ADD(w->out, "]}");
	ADD(w->out, "]");
}

/* The samples of family F for every server (upstream_foreach()). */
static void prom_upstream(void *arg, const struct upstream_info *i,
			  bool first)
{
	struct stats_walk *w = arg;
	struct evbuffer *out = w->out;
	uint64_t v;

	(void)first;
	evbuffer_add_printf(out, "%s{service=\"", fams[w->up_fam].name);
	label_str(out, i->service);
	ADD(out, "\",server=\"");
	label_str(out, i->server);
	ADD(out, "\"}");
	switch (w->up_fam) {
	case F_UP_UP:
		v = i->state != UPSTREAM_DOWN;
		break;
	case F_UP_ACTIVE:
		v = i->active;
		break;
	case F_UP_CONNS:
		v = i->connections;
		break;
	case F_UP_FAILS:
		v = i->failures;
		break;
	case F_UP_CHECKS:
		v = i->checks;
		break;
	case F_UP_CHECKS_FAILED:
		v = i->checks_failed;
		break;
	default:
		evbuffer_add_printf(out, " %llu.%06llu\n",
				    (unsigned long long)(i->check_us / 1000000),
				    (unsigned long long)(i->check_us % 1000000));
		return;
	}
	prom_u64(out, v);
}

static void json_service(struct stats_walk *w,
			 const struct listener_group *g,
			 const struct listener_tally *t)
{
	const struct relay_counters *c = &t->cnt;
	const struct config_service *svc = tally_svc(g, t);
	struct evbuffer *out = w->out;
	const struct listener *l;
	bool first = true;

	ADD(out, "{\"name\":");
	json_str(out, t->name);
	ADD(out, ",\"listeners\":[");
	TAILQ_FOREACH(l, &g->members, entry) {
		if (l->tally != t)
			continue;
		evbuffer_add_printf(out, "%s{\"address\":", first ? "" : ",");
		first = false;
		json_str(out, l->addr->text);
		evbuffer_add_printf(out, ",\"state\":\"%s\"",
				    state_name(l->state));
		if (l->state != LISTENER_LISTENING && l->err) {
			char why[256];

			snprintf(why, sizeof(why), "%s%s%s",
				 l->err_what ? l->err_what : "",
				 l->err_what ? ": " : "", strerror(l->err));
			ADD(out, ",\"error\":");
			json_str(out, why);
			ADD(out, ",\"since\":");
			json_time(out, &l->err_at);
		}
		ADD(out, "}");
	}
	ADD(out, "]");
	/* every listener of a service has the same after a reload */
	if (svc) {
		ADD(out, ",\"upstream\":");
		json_str(out, svc->upstream.text);
		evbuffer_add_printf(out, ",\"protocol\":\"%s\"",
				    config_protocol_name(svc->protocol));
	}
	evbuffer_add_printf(out, ",\"active\":%llu,\"accepted\":%llu,"
			    "\"bytes_in\":%llu,\"bytes_out\":%llu,"
			    "\"connect_failures\":%llu,\"timeouts\":%llu,"
			    "\"closed\":{",
			    (unsigned long long)c->active,
			    (unsigned long long)c->accepted,
			    (unsigned long long)c->bytes_in,
			    (unsigned long long)c->bytes_out,
			    (unsigned long long)
			    c->closed[RELAY_CLOSE_CONNECT_FAILED],
			    (unsigned long long)timeouts(c));
	for (int r = 0; r < RELAY_CLOSE_MAX; r++)
		evbuffer_add_printf(out, "%s\"%s\":%llu", r ? "," : "",
				    relay_close_name(r),
				    (unsigned long long)c->closed[r]);
	ADD(out, "}");
	/* datagram services: their flows are the connections above */
	if (svc && svc->protocol == CONFIG_PROTO_UDP) {
		evbuffer_add_printf(out, ",\"datagrams_in\":%llu,"
				    "\"datagrams_out\":%llu,\"drops\":{",
				    (unsigned long long)c->datagrams_in,
				    (unsigned long long)c->datagrams_out);
		for (int r = 0; r < RELAY_DROP_MAX; r++)
			evbuffer_add_printf(out, "%s\"%s\":%llu", r ? "," : "",
					    relay_drop_name(r),
					    (unsigned long long)c->drops[r]);
		ADD(out, "}");
	}
	ADD(out, ",\"last_error\":");
	if (!t->last_fail_at.tv_sec) {
		ADD(out, "null");
	} else {
		evbuffer_add_printf(out, "{\"reason\":\"%s\",\"at\":",
				    relay_close_name(t->last_fail));
		json_time(out, &t->last_fail_at);
		ADD(out, "}");
	}
	ADD(out, "}");
}

/* The upper bound in seconds of LISTENER_WAIT bucket I ("+Inf" last). */
static void le_text(char *buf, size_t len, unsigned i)
{
	if (i >= LISTENER_WAIT_BUCKETS - 1)
		snprintf(buf, len, "+Inf");
	else
		snprintf(buf, len, "%g", (double)listener_wait_le_us[i] / 1e6);
}

/* The Q-quantile of W, as the upper bound of its bucket in seconds (the
 * histogram says no more); NULL-like -1 past the last bound, or empty. */
static double wait_quantile(const struct listener_waits *w, double q)
{
	uint64_t want = (uint64_t)((double)w->count * q + 0.999999), sum = 0;

	if (!w->count)
		return -1;
	for (unsigned i = 0; i < LISTENER_WAIT_BUCKETS - 1; i++) {
		sum += w->bucket[i];
		if (sum >= want)
			return (double)listener_wait_le_us[i] / 1e6;
	}
	return -1;
}

/* The namespace's accepting: "held" by reason, "accept_wait". */
static void json_accepting(struct evbuffer *out, const struct listener_group *g)
{
	static const struct listener_waits none;
	const struct listener_waits *w = g ? &g->waits : &none;
	uint64_t cum = 0;
	char le[16];
	double p;

	ADD(out, "\"held\":{");
	for (int r = 0; r < LISTENER_HOLD_MAX; r++)
		evbuffer_add_printf(out, "%s\"%s\":%llu", r ? "," : "",
				    listener_hold_name(r),
				    (unsigned long long)(g ? g->holds[r] : 0));
	evbuffer_add_printf(out, "},\"accept_wait\":{\"count\":%llu,"
			    "\"sum\":%.6f", (unsigned long long)w->count,
			    (double)w->sum_us / 1e6);
	for (int k = 0; k < 2; k++) {
		p = wait_quantile(w, k ? 0.99 : 0.5);
		if (p < 0)
			evbuffer_add_printf(out, ",\"%s\":null", k ? "p99" : "p50");
		else
			evbuffer_add_printf(out, ",\"%s\":%g", k ? "p99" : "p50", p);
	}
	ADD(out, ",\"buckets\":{");
	for (unsigned i = 0; i < LISTENER_WAIT_BUCKETS; i++) {
		cum += w->bucket[i];
		le_text(le, sizeof(le), i);
		evbuffer_add_printf(out, "%s\"%s\":%llu", i ? "," : "", le,
				    (unsigned long long)cum);
	}
	ADD(out, "}}");
}

static void json_ns(void *arg, const char *name,
		    const struct listener_group *g, int err)
{
	struct stats_walk *w = arg;
	struct evbuffer *out = w->out;
	struct linkstats_counters c;
	const struct listener_tally *t;
	const char *veth, *user = NULL;
	bool first = true;

	if (w->emitted++)
		ADD(out, ",");
	ADD(out, "{\"name\":");
	json_str(out, name);
	ADD(out, ",\"error\":");
	json_str(out, err ? strerror(err < 0 ? -err : err) : NULL);
	if (w->d->provd)
		provisioned_find_ns(w->d->provd, name, &user);
	ADD(out, ",\"provisioned_for\":");
	json_str(out, user);
	evbuffer_add_printf(out, ",\"active\":%llu,",
			    (unsigned long long)(g ? g->active : 0));
	json_accepting(out, g);
	ADD(out, ",\"services\":[");
	if (g)
		TAILQ_FOREACH(t, &g->tallies, entry) {
			if (!first)
				ADD(out, ",");
			first = false;
			json_service(w, g, t);
		}
	ADD(out, "],\"veth\":");
	veth = veth_of(w, name, &c);
	if (!veth) {
		ADD(out, "null");
	} else {
		ADD(out, "{\"name\":");
		json_str(out, veth);
		evbuffer_add_printf(out, ",\"rx_bytes\":%llu,\"tx_bytes\":%llu,"
				    "\"rx_packets\":%llu,\"tx_packets\":%llu,"
				    "\"rx_dropped\":%llu,\"tx_dropped\":%llu}",
				    (unsigned long long)c.rx_bytes,
				    (unsigned long long)c.tx_bytes,
				    (unsigned long long)c.rx_packets,
				    (unsigned long long)c.tx_packets,
				    (unsigned long long)c.rx_dropped,
				    (unsigned long long)c.tx_dropped);
	}
	ADD(out, "}");
}

/* ------------------------------------------------------------ Prometheus */

static void prom_labels(struct evbuffer *out, const char *ns,
			const char *k2, const char *v2, const char *k3,
			const char *v3)
{
	ADD(out, "{namespace=\"");
	label_str(out, ns);
	if (k2) {
		evbuffer_add_printf(out, "\",%s=\"", k2);
		label_str(out, v2);
	}
	if (k3) {
		evbuffer_add_printf(out, "\",%s=\"", k3);
		label_str(out, v3);
	}
	ADD(out, "\"}");
}

static void prom_u64(struct evbuffer *out, uint64_t v)
{
	evbuffer_add_printf(out, " %llu\n", (unsigned long long)v);
}

static void prom_head(struct stats_walk *w)
{
	struct daemon *d = w->d;
	struct evbuffer *out = w->out;
	const char *n;

	for (int f = 0; f < F_FIRST_NS; f++) {
		n = fams[f].name;
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", n,
				    fams[f].help, n, fams[f].type);
		switch (f) {
		case F_INFO:
			evbuffer_add_printf(out, "%s{version=\"", n);
			label_str(out, PACKAGE_VERSION);
			ADD(out, "\"} 1\n");
			break;
		case F_START:
			evbuffer_add_printf(out, "%s %lld.%03ld\n", n,
					    (long long)d->started.tv_sec,
					    (long)d->started.tv_usec / 1000);
			break;
		case F_GEN:
			evbuffer_add_printf(out, "%s %llu\n", n,
					    (unsigned long long)d->generation);
			break;
		case F_RELOAD_OK:
			evbuffer_add_printf(out, "%s %d\n", n,
					    !d->reloaded.tv_sec || d->reload_ok);
			break;
		case F_RELOAD_AT:
			evbuffer_add_printf(out, "%s %lld.%03ld\n", n,
					    (long long)d->reloaded.tv_sec,
					    (long)d->reloaded.tv_usec / 1000);
			break;
		case F_NS:
			evbuffer_add_printf(out, "%s %zu\n", n,
					    nstable_count(d->nst));
			break;
		case F_LST:
			evbuffer_add_printf(out, "%s %u\n", n,
					    nstable_listener_count(d->nst));
			break;
		case F_LST_UP:
			evbuffer_add_printf(out, "%s %u\n", n,
					    nstable_listening_count(d->nst));
			break;
		case F_CONNS:
			evbuffer_add_printf(out, "%s %llu\n", n,
					    (unsigned long long)
					    listener_set_conn_count(d->ls));
			break;
		default:	/* the servers' families */
			w->up_fam = (unsigned)f;
			if (d->ups)
				upstream_foreach(d->ups, prom_upstream, w);
			break;
		}
	}
}

/* The histogram of accept waits and the holds of namespace NAME. */
static void prom_accepting(struct stats_walk *w, const char *name,
			   const struct listener_group *g)
{
	struct evbuffer *out = w->out;
	const char *fn = fams[w->fam].name;
	uint64_t cum = 0;
	char le[16];

	if (!g)
		return;
	if (w->fam == F_HELD) {
		for (int r = 0; r < LISTENER_HOLD_MAX; r++) {
			if (!g->holds[r])
				continue;
			evbuffer_add(out, fn, strlen(fn));
			prom_labels(out, name, "reason", listener_hold_name(r),
				    NULL, NULL);
			prom_u64(out, g->holds[r]);
		}
		return;
	}
	for (unsigned i = 0; i < LISTENER_WAIT_BUCKETS; i++) {
		cum += g->waits.bucket[i];
		le_text(le, sizeof(le), i);
		evbuffer_add_printf(out, "%s_bucket", fn);
		prom_labels(out, name, "le", le, NULL, NULL);
		prom_u64(out, cum);
	}
	evbuffer_add_printf(out, "%s_sum", fn);
	prom_labels(out, name, NULL, NULL, NULL, NULL);
	evbuffer_add_printf(out, " %.6f\n", (double)g->waits.sum_us / 1e6);
	evbuffer_add_printf(out, "%s_count", fn);
	prom_labels(out, name, NULL, NULL, NULL, NULL);
	prom_u64(out, g->waits.count);
}

/* The datagram families of tally T of namespace NAME: udp services only. */
static void prom_dgrams(struct stats_walk *w, const char *name,
			const struct listener_group *g,
			const struct listener_tally *t)
{
	const struct config_service *svc = tally_svc(g, t);
	const struct relay_counters *k = &t->cnt;
	const char *fn = fams[w->fam].name;
	struct evbuffer *out = w->out;

	if (!svc || svc->protocol != CONFIG_PROTO_UDP)
		return;
	if (w->fam == F_DGRAMS) {
		evbuffer_add(out, fn, strlen(fn));
		prom_labels(out, name, "service", t->name, "direction", "in");
		prom_u64(out, k->datagrams_in);
		evbuffer_add(out, fn, strlen(fn));
		prom_labels(out, name, "service", t->name, "direction", "out");
		prom_u64(out, k->datagrams_out);
		return;
	}
	for (int r = 0; r < RELAY_DROP_MAX; r++) {
		if (!k->drops[r])
			continue;
		evbuffer_add(out, fn, strlen(fn));
		prom_labels(out, name, "service", t->name, "reason",
			    relay_drop_name(r));
		prom_u64(out, k->drops[r]);
	}
}

static void prom_ns(void *arg, const char *name,
		    const struct listener_group *g, int err)
{
	struct stats_walk *w = arg;
	struct evbuffer *out = w->out;
	const char *fn = fams[w->fam].name;
	struct linkstats_counters c;
	const struct listener_tally *t;
	const struct listener *l;
	const char *veth;
	uint64_t v;

	(void)err;
	if (w->fam >= F_RX_BYTES) {
		veth = veth_of(w, name, &c);
		if (!veth)
			return;
		v = w->fam == F_RX_BYTES ? c.rx_bytes :
		    w->fam == F_TX_BYTES ? c.tx_bytes :
		    w->fam == F_RX_PACKETS ? c.rx_packets : c.tx_packets;
		evbuffer_add(out, fn, strlen(fn));
		prom_labels(out, name, "interface", veth, NULL, NULL);
		prom_u64(out, v);
		return;
	}
	if (w->fam == F_WAIT || w->fam == F_HELD) {
		prom_accepting(w, name, g);
		return;
	}
	if (w->fam == F_LISTENER_UP) {
		if (!g)
			return;
		TAILQ_FOREACH(l, &g->members, entry) {
			evbuffer_add(out, fn, strlen(fn));
			prom_labels(out, name, "service", l->origin.svc->name,
				    "address", l->addr->text);
			evbuffer_add_printf(out, " %d\n",
					    l->state == LISTENER_LISTENING);
		}
		return;
	}
	if (!g)
		return;
	TAILQ_FOREACH(t, &g->tallies, entry) {
		const struct relay_counters *k = &t->cnt;

		if (w->fam == F_DGRAMS || w->fam == F_DROPS) {
			prom_dgrams(w, name, g, t);
			continue;
		}
		if (w->fam == F_CLOSED) {
			/* only the reasons seen: nine series per service,
			 * mostly zeros, would make most of the page */
			for (int r = 0; r < RELAY_CLOSE_MAX; r++) {
				if (!k->closed[r])
					continue;
				evbuffer_add(out, fn, strlen(fn));
				prom_labels(out, name, "service", t->name,
					    "reason", relay_close_name(r));
				prom_u64(out, k->closed[r]);
			}
			continue;
		}
		v = w->fam == F_ACTIVE ? k->active :
		    w->fam == F_ACCEPTED ? k->accepted :
		    w->fam == F_BYTES_IN ? k->bytes_in :
		    w->fam == F_BYTES_OUT ? k->bytes_out :
		    w->fam == F_CONNFAIL ?
		    k->closed[RELAY_CLOSE_CONNECT_FAILED] : timeouts(k);
		evbuffer_add(out, fn, strlen(fn));
		prom_labels(out, name, "service", t->name, NULL, NULL);
		prom_u64(out, v);
	}
}

/* ------------------------------------------------------------ walks */

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct stats_walk *w = arg;

	(void)fd;
	(void)what;
	w->ready(w->arg);
}

static void on_links(void *arg, int err)
{
	struct stats_walk *w = arg;

	(void)err;	/* without fresh counters: the last known, or none */
	w->lw = NULL;
	w->ready(w->arg);
}

static void collect(void *arg, const char *name,
		    const struct listener_group *g, int err)
{
	struct stats_walk *w = arg;

	(void)g;
	(void)err;
	if (w->err)
		return;
	w->names[w->n] = strdup(name);
	if (!w->names[w->n])
		w->err = -ENOMEM;
	else
		w->n++;
}

struct stats_walk *stats_walk_new(struct stats *s, enum stats_format fmt,
				  const char *ns, void (*ready)(void *arg),
				  void *arg, int *err)
{
	struct daemon *d = s->d;
	struct stats_walk *w = calloc(1, sizeof(*w));
	size_t cap = fmt == STATS_STATUS ? 0 : ns ? 1 : nstable_count(d->nst);
	int r = 1;

	if (!w)
		goto nomem;
	w->d = d;
	w->s = s;
	w->fmt = fmt;
	w->ready = ready;
	w->arg = arg;
	w->names = calloc(cap ? cap : 1, sizeof(*w->names));
	if (!w->names)
		goto nomem;
	if (ns && fmt != STATS_STATUS &&
	    nstable_get(d->nst, ns, collect, w) < 0) {
		stats_walk_free(w);
		*err = -ENOENT;
		return NULL;
	}
	if (!ns && cap)
		nstable_foreach(d->nst, collect, w);
	if (w->err)
		goto nomem;
	if (fmt != STATS_STATUS && d->provd)
		r = linkstats_refresh(s->links, STATS_VETH_MAX_AGE_MS,
				      on_links, w, &w->lw);
	if (r != 0) {
		/* fresh enough, or unreadable: go on without waiting */
		w->defer = event_new(d->base, -1, 0, on_defer, w);
		if (!w->defer ||
		    event_add(w->defer, &(struct timeval){ 0, 0 }) < 0)
			goto nomem;
	}
	return w;
nomem:
	stats_walk_free(w);
	*err = -ENOMEM;
	return NULL;
}

void stats_walk_free(struct stats_walk *w)
{
	if (!w)
		return;
	linkstats_cancel(w->lw);
	if (w->defer)
		event_free(w->defer);
	for (size_t i = 0; i < w->n; i++)
		free(w->names[i]);
	free(w->names);
	free(w);
}

int stats_walk_step(struct stats_walk *w, struct evbuffer *out,
		    size_t budget)
{
	size_t start = evbuffer_get_length(out);

	if (w->done)
		return 1;
	w->out = out;
	w->err = 0;
	if (!w->head) {
		w->head = true;
		if (w->fmt == STATS_PROM) {
			prom_head(w);
		} else {
			json_head(w);
			if (w->fmt == STATS_STATUS) {
				ADD(out, "}");
				w->done = true;
				return 1;
			}
			ADD(out, ",\"namespaces\":[");
		}
	}
	if (w->fmt == STATS_JSON) {
		while (w->i < w->n &&
		       evbuffer_get_length(out) - start < budget && !w->err)
			(void)nstable_get(w->d->nst, w->names[w->i++],
					  json_ns, w);
		if (w->i == w->n && !w->err) {
			ADD(out, "]}");
			w->done = true;
		}
	} else {
		if (w->fam < F_FIRST_NS)
			w->fam = F_FIRST_NS;
		while (w->fam < F_MAX &&
		       evbuffer_get_length(out) - start < budget && !w->err) {
			if (w->i == 0)
				evbuffer_add_printf(out, "# HELP %s %s\n"
						    "# TYPE %s %s\n",
						    fams[w->fam].name,
						    fams[w->fam].help,
						    fams[w->fam].name,
						    fams[w->fam].type);
			if (w->i < w->n)
				(void)nstable_get(w->d->nst,
						  w->names[w->i++], prom_ns,
						  w);
			if (w->i >= w->n) {
				w->i = 0;
				w->fam++;
			}
		}
		w->done = w->fam == F_MAX && !w->err;
	}
	w->out = NULL;
	if (w->err)
		return w->err;
	return w->done ? 1 : 0;
}
