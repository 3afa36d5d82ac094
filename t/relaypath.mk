# SPDX-License-Identifier: MIT
# The relay's two byte paths (splice and copy) and the benchmarks' smoke
# run, so that neither path nor the bench can rot unseen.

check_PROGRAMS += t/unit/relay_splice_test
TESTS += t/unit/relay_splice_test
# relay_splice_test.c includes relay_test.c (the relay's contract) for its
# helpers: not listed here, or it would be linked twice
t_unit_relay_splice_test_SOURCES = t/unit/relay_splice_test.c t/unit/tap.h \
	engine/relay.c engine/relay.h engine/relay_set.c engine/relay_int.h \
	engine/upstream.c engine/upstream.h \
	engine/proxyhdr.c engine/proxyhdr.h \
	engine/log.c engine/log.h
t_unit_relay_splice_test_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSYSTEMD_CFLAGS)
t_unit_relay_splice_test_LDADD = $(LIBEVENT_LIBS) $(LIBSYSTEMD_LIBS)

# the relay suite again with NSRELAY_COPY_ONLY=1
INTEGRATION_TESTS += t/relay-copy.t t/halfclose-copy.t t/failure-copy.t

EXTRA_DIST += t/relaypath.mk t/relay-copy.t t/halfclose-copy.t t/failure-copy.t

# make bench-smoke: every bench, every row, about a second each (also part
# of make check through t/bench-smoke.t)
INTEGRATION_TESTS += t/bench-smoke.t
EXTRA_DIST += t/bench-smoke.t t/bench/peers-bench.sh t/bench/scale-bench.sh
bench-smoke: nsrelayd t/tools/nsprov
	$(MAKE) $(AM_MAKEFLAGS) check TESTS=t/bench-smoke.t
.PHONY: bench-smoke
