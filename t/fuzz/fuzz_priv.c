/* SPDX-License-Identifier: MIT */
/* fuzz_priv: what the privileged helper reads from the engine, on
 * arbitrary bytes.
 *
 * The first byte picks the decoder: even, priv_decode() (the requests on
 * its channels); odd, gate_check() (a netlink request on a socket of the
 * host's, 1, or of a namespace's, 3, with the default templates and
 * pools, handles 1..3 known).  Each must accept exactly what it documents
 * and say why otherwise, within the bounds of its input (a copy on the
 * heap: ASan sees a read past the end), and what it accepts must hold up
 * to the checks the helper then relies on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netlink.h>

#include "netns/pool.h"
#include "priv/gate.h"
#include "priv/proto.h"
#include "t/fuzz/fuzz.h"

static int fd_of(void *arg, uint32_t h)
{
	(void)arg;
	return h >= 1 && h <= 3 ? (int)(100 + h) : -1;
}

static void decode(const uint8_t *data, size_t size)
{
	union priv_req q;
	const char *why = NULL;
	void *buf = malloc(size ? size : 1);
	int t;

	if (!buf)
		return;
	if (size)
		memcpy(buf, data, size);
	t = priv_decode(buf, size, &q, &why);
	if (t < 0) {
		if (t != -EBADMSG || !why || !*why)
			abort();
	} else {
		if (q.h.len != size)
			abort();
		if (t == PRIV_LISTEN) {
			struct sockaddr_storage ss;

			if (q.listen.n < 1 || q.listen.n > PRIV_LISTEN_MAX ||
			    priv_listen_size(q.listen.n) != size ||
			    !memchr(q.listen.ns, 0, sizeof(q.listen.ns)))
				abort();
			for (uint32_t i = 0; i < q.listen.n; i++)
				if (!priv_addr_to_sa(&q.listen.addr[i], &ss))
					abort();
		}
		if ((t == PRIV_NS_OPEN || t == PRIV_NS_REMOVE) &&
		    (!memchr(q.ns.ns, 0, sizeof(q.ns.ns)) || !q.ns.ns[0] ||
		     strchr(q.ns.ns, '/')))
			abort();
		if (t == PRIV_FILE_WRITE && q.file.which >= PRIV_FILE_MAX)
			abort();
	}
	free(buf);
}

static void gate(uint8_t kind, const uint8_t *data, size_t size)
{
	static struct prov_pool pool;
	static int init;
	char why[256];
	void *buf;
	int r;

	if (!init) {
		prov_pool_init(&pool);
		init = 1;
	}
	buf = malloc(size ? size : 1);
	if (!buf)
		return;
	if (size)
		memcpy(buf, data, size);
	memset(why, 'x', sizeof(why));
	r = gate_check(&pool, kind & 2 ? GATE_NS : GATE_HOST, buf, size,
		       fd_of, NULL, why, sizeof(why));
	if (r < 0 && (r != -EPERM || !memchr(why, 0, sizeof(why))))
		abort();
	if (r == 0 && (size < sizeof(struct nlmsghdr) ||
		       ((struct nlmsghdr *)buf)->nlmsg_len != size))
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		gate(data[0], data + 1, size - 1);
	else
		decode(data + 1, size - 1);
	return 0;
}
