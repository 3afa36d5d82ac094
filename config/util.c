/* SPDX-License-Identifier: MIT */
/* util.c: small helpers of the config loader: formatted strings, arrays
 * that grow by doubling, and a string -> index hash set (open addressing,
 * FNV-1a) used to find duplicates in linear time.
 */
#include "config/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *config_vfmt(const char *fmt, va_list ap)
{
	va_list aq;
	char *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

char *config_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = config_vfmt(fmt, ap);
	va_end(ap);
	return s;
}

/* Room for N + 1 elements of SIZE in ARR, which holds N; capacity is
 * implied by N (4, 8, 16, ...).  Returns the array or NULL. */
void *config_grow(void *arr, size_t n, size_t size)
{
	size_t cap;

	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return arr;
	cap = n ? 2 * n : 4;
	if (cap > SIZE_MAX / size)
		return NULL;
	return realloc(arr, cap * size);
}

void config_free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

bool config_in_strv(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* ---- string set ------------------------------------------------------ */

static size_t hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

/* Index stored for KEY, or SIZE_MAX. */
size_t config_set_get(const struct strset *set, const char *key)
{
	size_t i;

	if (!set->cap)
		return SIZE_MAX;
	for (i = hash_str(key) & (set->cap - 1); set->slot[i].key;
	     i = (i + 1) & (set->cap - 1))
		if (!strcmp(set->slot[i].key, key))
			return set->slot[i].idx;
	return SIZE_MAX;
}

static void set_insert(struct strset *set, const char *key, size_t idx)
{
	size_t i;

	for (i = hash_str(key) & (set->cap - 1); set->slot[i].key;
	     i = (i + 1) & (set->cap - 1))
		;
	set->slot[i].key = key;
	set->slot[i].idx = idx;
	set->n++;
}

/* Add KEY (absent) -> IDX.  0, or -1 when out of memory. */
int config_set_put(struct strset *set, const char *key, size_t idx)
{
	struct strset old = *set;
	size_t i;

	if (2 * (set->n + 1) > set->cap) {
		size_t cap = set->cap ? 2 * set->cap : 16;

		set->slot = calloc(cap, sizeof(*set->slot));
		if (!set->slot) {
			*set = old;
			return -1;
		}
		set->cap = cap;
		set->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.slot[i].key)
				set_insert(set, old.slot[i].key,
					   old.slot[i].idx);
		free(old.slot);
	}
	set_insert(set, key, idx);
	return 0;
}

void config_set_free(struct strset *set)
{
	free(set->slot);
	set->slot = NULL;
	set->cap = set->n = 0;
}

char *config_state_path(const char *control)
{
	const char *slash = strrchr(control, '/');
	char *p;

	if (!slash)
		return strdup("provisioned");
	if (asprintf(&p, "%.*s/provisioned", (int)(slash - control),
		     control) < 0)
		return NULL;
	return p;
}
