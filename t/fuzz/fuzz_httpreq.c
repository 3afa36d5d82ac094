/* SPDX-License-Identifier: MIT */
/* fuzz_httpreq: the metrics endpoint's request heads on arbitrary bytes.
 *
 * httpreq_parse() must read no byte past the LEN it is given (the input
 * is a copy on the heap of exactly its size, so ASan sees a read past its
 * end), answer one of its statuses, wait (0) only below the bound, and
 * never change its answer as more bytes come: every prefix of the input
 * that has an answer has this one, and a page request's head alone is
 * judged the same as the head with what follows it.
 */
#include "engine/httpreq.h"
#include "t/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

static int parse(const uint8_t *data, size_t size, struct httpreq *req)
{
	char *copy = malloc(size ? size : 1);
	int r;

	if (!copy)
		abort();
	if (size)
		memcpy(copy, data, size);
	r = httpreq_parse(copy, size, req);
	free(copy);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpreq req, again;
	size_t k, step;
	int r, rk;

	r = parse(data, size, &req);
	switch (r) {
	case 0:
		if (size >= HTTPREQ_HEAD_MAX)
			abort();
		break;
	case 200:
		if (!req.len || req.len > size || req.len > HTTPREQ_HEAD_MAX ||
		    data[req.len - 1] != '\n' || req.minor > 9)
			abort();
		if (parse(data, req.len, &again) != 200 ||
		    again.len != req.len || again.head != req.head ||
		    again.minor != req.minor)
			abort();
		break;
	case 400: case 404: case 405: case 431: case 505:
		break;
	default:
		abort();
	}
	if (!*httpreq_reason(r ? r : 200))
		abort();
	/* every prefix (a sample of them for long inputs): no answer yet,
	 * or this one */
	step = size <= 512 ? 1 : size / 256;
	for (k = 0; k < size; k += step) {
		rk = parse(data, k, &again);
		if (rk && rk != r)
			abort();
		if (rk == 200 && again.len != req.len)
			abort();
	}
	return 0;
}
