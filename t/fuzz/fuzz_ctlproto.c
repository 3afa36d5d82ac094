/* SPDX-License-Identifier: MIT */
/* fuzz_ctlproto: the control socket's line parser on arbitrary bytes.
 *
 * ctlproto_parse() must accept exactly "VERB USER" with a plain user name
 * and say why otherwise, within the bounds it is given: the input is not
 * NUL-terminated (a copy on the heap, so ASan sees a read past its end),
 * and the reason buffer is sometimes tiny.
 */
#include "engine/ctlproto.h"
#include "t/fuzz/fuzz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctlproto_req req;
	char why[128], tiny[4];
	size_t n;
	char *line;
	int rc;

	line = malloc(size ? size : 1);
	if (!line)
		return 0;
	if (size)
		memcpy(line, data, size);
	memset(why, 'x', sizeof(why));
	rc = ctlproto_parse(line, size, &req, why, sizeof(why));
	if (rc == 0) {
		n = strnlen(req.user, sizeof(req.user));
		/* status, reload and a bare stats take no argument */
		if ((n == 0 && (req.verb == CTLPROTO_PROVISION ||
				req.verb == CTLPROTO_DEPROVISION)) ||
		    n == sizeof(req.user) || n > size)
			abort();
		if (strcmp(ctlproto_verb_name(req.verb), "?") == 0)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.$",
				    req.user[i]))
				abort();
		if (req.user[0] == '-' || req.user[0] == '.')
			abort();
	} else {
		if (rc != -EINVAL || !memchr(why, '\0', sizeof(why)) || !*why)
			abort();
		/* the same answer with a reason buffer too small for it */
		if (ctlproto_parse(line, size, &req, tiny, sizeof(tiny)) != rc ||
		    !memchr(tiny, '\0', sizeof(tiny)))
			abort();
		(void)ctlproto_parse(line, size, &req, NULL, 0);
	}
	free(line);
	return 0;
}
