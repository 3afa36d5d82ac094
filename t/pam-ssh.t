#!/bin/bash
# SPDX-License-Identifier: MIT
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
skip_all "not written yet"
