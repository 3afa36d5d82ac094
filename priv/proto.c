/* SPDX-License-Identifier: MIT */
/* proto: decoding the engine's requests to the helper, and its answers.
 * Every check a request has to pass before the helper acts on it is here,
 * in one pure function (t/fuzz/fuzz_priv.c feeds it anything). */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "priv/proto.h"

/* A string field of SIZE bytes: NUL-terminated inside it. */
static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/* A file name in the namespace directory: not empty, no '/', not "." or
 * "..".  Any other byte is allowed, as the kernel allows it. */
static bool file_name(const char *s)
{
	return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static bool addr_ok(const struct priv_addr *a)
{
	if (a->family != AF_INET && a->family != AF_INET6)
		return false;
	if (!a->port || a->dgram > 1)
		return false;
	if (a->family == AF_INET) {
		static const uint8_t zero[12];

		if (a->scope_id || memcmp(a->addr + 4, zero, sizeof(zero)))
			return false;
	}
	return true;
}

int priv_decode(const void *buf, size_t len, union priv_req *out,
		const char **why)
{
	struct priv_hdr h;
	size_t want;

	if (len < sizeof(h)) {
		*why = "shorter than a header";
		return -EBADMSG;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.len != len) {
		*why = "its length is not the datagram's";
		return -EBADMSG;
	}
	switch (h.type) {
	case PRIV_LISTEN:
		if (len < sizeof(struct priv_listen)) {
			*why = "LISTEN: too short";
			return -EBADMSG;
		}
		memcpy(out, buf, sizeof(struct priv_listen));
		if (out->listen.n < 1 || out->listen.n > PRIV_LISTEN_MAX) {
			*why = "LISTEN: count out of range";
			return -EBADMSG;
		}
		want = priv_listen_size(out->listen.n);
		break;
	case PRIV_NS_OPEN:
	case PRIV_NS_REMOVE:
		want = sizeof(struct priv_ns);
		break;
	case PRIV_NS_CLOSE:
	case PRIV_NL_OPEN:
		want = sizeof(struct priv_handle);
		break;
	case PRIV_FILE_WRITE:
		want = sizeof(struct priv_file_write);
		break;
	default:
		*why = "unknown type";
		return -EBADMSG;
	}
	if (len != want) {
		*why = "length not that of its type";
		return -EBADMSG;
	}
	memcpy(out, buf, len);
	switch (h.type) {
	case PRIV_LISTEN:
		if (out->listen.host > 1) {
			*why = "LISTEN: host is not 0 or 1";
			return -EBADMSG;
		}
		if (!terminated(out->listen.ns, sizeof(out->listen.ns)) ||
		    (!out->listen.host && !file_name(out->listen.ns))) {
			*why = "LISTEN: not a namespace name";
			return -EBADMSG;
		}
		for (uint32_t i = 0; i < out->listen.n; i++)
			if (!addr_ok(&out->listen.addr[i])) {
				*why = "LISTEN: a bad address";
				return -EBADMSG;
			}
		break;
	case PRIV_NS_OPEN:
	case PRIV_NS_REMOVE:
		if (!terminated(out->ns.ns, sizeof(out->ns.ns)) ||
		    !file_name(out->ns.ns)) {
			*why = "not a namespace name";
			return -EBADMSG;
		}
		if (out->ns.flags & ~(h.type == PRIV_NS_OPEN ? 3u : 0u)) {
			*why = "unknown flags";
			return -EBADMSG;
		}
		break;
	case PRIV_NS_CLOSE:
		if (!out->handle.handle) {
			*why = "NS_CLOSE: handle 0";
			return -EBADMSG;
		}
		break;
	case PRIV_FILE_WRITE:
		if (out->file.which >= PRIV_FILE_MAX) {
			*why = "FILE_WRITE: unknown file";
			return -EBADMSG;
		}
		break;
	}
	return (int)h.type;
}

int priv_decode_reply(const void *buf, size_t len, struct priv_reply *out)
{
	if (len != sizeof(*out))
		return -EBADMSG;
	memcpy(out, buf, len);
	if (out->h.type != PRIV_REPLY || out->h.len != len ||
	    out->n > PRIV_LISTEN_MAX || out->err > 0 ||
	    !terminated(out->why, sizeof(out->why)))
		return -EBADMSG;
	for (uint32_t i = 0; i < out->n; i++)
		if (out->res[i].err > 0 || out->res[i].step >= PRIV_STEP_MAX)
			return -EBADMSG;
	return 0;
}

socklen_t priv_addr_to_sa(const struct priv_addr *a,
			  struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!addr_ok(a))
		return 0;
	if (a->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->addr, 4);
		return sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		in6->sin6_scope_id = a->scope_id;
		memcpy(&in6->sin6_addr, a->addr, 16);
		return sizeof(*in6);
	}
}

int priv_addr_from_sa(const struct sockaddr *sa, socklen_t len,
		      struct priv_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;

		a->family = AF_INET;
		a->port = ntohs(in->sin_port);
		memcpy(a->addr, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		a->family = AF_INET6;
		a->port = ntohs(in6->sin6_port);
		a->scope_id = in6->sin6_scope_id;
		memcpy(a->addr, &in6->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

const char *priv_step_name(enum priv_step s)
{
	static const char *const names[PRIV_STEP_MAX] = {
		[PRIV_STEP_NONE] = "",
		[PRIV_STEP_SOCKET] = "socket",
		[PRIV_STEP_SETSOCKOPT] = "setsockopt",
		[PRIV_STEP_BIND] = "bind",
		[PRIV_STEP_LISTEN] = "listen",
		[PRIV_STEP_LIMIT] = "file descriptor limit reached",
	};

	return s < PRIV_STEP_MAX ? names[s] : "?";
}

const char *priv_type_name(uint32_t type)
{
	switch (type) {
	case PRIV_LISTEN: return "LISTEN";
	case PRIV_NS_OPEN: return "NS_OPEN";
	case PRIV_NS_REMOVE: return "NS_REMOVE";
	case PRIV_NS_CLOSE: return "NS_CLOSE";
	case PRIV_NL_OPEN: return "NL_OPEN";
	case PRIV_FILE_WRITE: return "FILE_WRITE";
	case PRIV_REPLY: return "REPLY";
	default: return "?";
	}
}
