/* SPDX-License-Identifier: MIT */
/* httpreq: the head of an HTTP/1.x request to the metrics endpoint, judged.
 * Pure: no I/O, no allocation, no logging (unit-tested and fuzzed). */
#ifndef NSRELAY_HTTPREQ_H
#define NSRELAY_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>

/* The request line, the field lines and the empty line that ends them */
#define HTTPREQ_HEAD_MAX	8192

struct httpreq {
	bool head;		/* HEAD: the status and fields, no body */
	unsigned minor;		/* HTTP/1.MINOR */
	size_t len;		/* bytes of the head, its empty line included */
};

/* Judge the first LEN bytes a client sent (BUF need not be NUL-terminated;
 * only the first HTTPREQ_HEAD_MAX bytes are looked at).  Returns 0 while
 * no answer can be given yet: the head is not complete and may still be
 * (LEN < HTTPREQ_HEAD_MAX): read more.  Otherwise the status to answer,
 * which no bytes that follow could change:
 *   200  GET or HEAD of /metrics, with or without a query, in HTTP/1.x;
 *        REQ is filled
 *   400  not a request head: a bad request line (as soon as its bytes show
 *        it), a bad field line, a control byte, a bare CR, obs-fold, a
 *        target that is neither /path nor http://host/path, HTTP/1.1
 *        without exactly one Host (or with a bad one)
 *   404  another target (REQ->head is set: a HEAD gets no body)
 *   405  another method (answer with Allow: GET, HEAD)
 *   431  the head does not end within HTTPREQ_HEAD_MAX bytes
 *   505  another major version than HTTP/1
 * A request line that is not a request for the page is answered as soon
 * as it is complete, before the fields that follow it. */
int httpreq_parse(const char *buf, size_t len, struct httpreq *req);

/* The reason phrase of a status httpreq_parse() returns, or of 408, 500
 * and 503; "Error" for others. */
const char *httpreq_reason(int status);
#endif
