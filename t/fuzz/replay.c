/* SPDX-License-Identifier: MIT */
/* replay: run every file of a fuzz corpus through a fuzz target (TAP).
 *
 * Built with the normal compiler (no libFuzzer) and linked with one
 * target; `make check` runs it over t/fuzz/corpus/<target>/, so a
 * sanitizer build replays every input found so far under ASan and UBSan.
 * Arguments: files or directories; none = FUZZ_CORPUS.  Each file is read
 * into a buffer of exactly its size, as libFuzzer does.  A crash aborts the
 * run (the test fails); otherwise one line per directory or file.
 */
#include "t/fuzz/fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_CORPUS
#define FUZZ_CORPUS "."
#endif

static int tests;

/* Run the file at PATH.  0, or -1 if it cannot be read. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;
	int rc = -1;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc(n ? (size_t)n : 1);
		if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
			fflush(stdout);	/* what ran last is on record */
			LLVMFuzzerTestOneInput(buf, (size_t)n);
			rc = 0;
		}
	}
	free(buf);
	fclose(f);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dot(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Replay PATH (a file or a directory of files): one TAP line. */
static void replay(const char *path)
{
	struct dirent **list;
	struct stat st;
	char file[4096];
	int n, i, done = 0, bad = 0;

	tests++;
	if (stat(path, &st) < 0) {
		printf("not ok %d - %s: %s\n", tests, path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (run_file(path) < 0)
			printf("not ok %d - %s: unreadable\n", tests, path);
		else
			printf("ok %d - %s\n", tests, path);
		return;
	}
	n = scandir(path, &list, not_dot, by_name);
	if (n < 0) {
		printf("not ok %d - %s: %s\n", tests, path, strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		snprintf(file, sizeof(file), "%s/%s", path, list[i]->d_name);
		if (run_file(file) < 0) {
			printf("# %s: unreadable\n", file);
			bad++;
		} else {
			done++;
		}
		free(list[i]);
	}
	free(list);
	printf("%sok %d - %s: %d inputs replayed\n", bad || !done ? "not " :
	       "", tests, path, done);
}

int main(int argc, char **argv)
{
	int i;

	if (argc < 2)
		replay(FUZZ_CORPUS);
	for (i = 1; i < argc; i++)
		replay(argv[i]);
	printf("1..%d\n", tests);
	return 0;
}
