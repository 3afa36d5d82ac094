#!/bin/bash
# SPDX-License-Identifier: MIT
# t/failure.t again on the copy path: NSRELAY_COPY_ONLY=1 makes the daemon read
# and write every byte instead of splicing (engine/relay.c), so that both
# byte paths pass the same checks.
export NSRELAY_COPY_ONLY=1
exec bash "${top_srcdir:-$(dirname "$0")/..}/t/failure.t"
