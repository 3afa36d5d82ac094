/* SPDX-License-Identifier: MIT */
/* fuzz.h: the one entry point every fuzz target defines (libFuzzer's). */
#ifndef NSRELAY_FUZZ_H
#define NSRELAY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input through the target.  Returns 0; a bug aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
