# SPDX-License-Identifier: MIT
# The relay alone (a unit test over local sockets, no namespaces), the
# per-namespace limits under floods, and the latency and start-up benches.

check_PROGRAMS += t/unit/relay_test
TESTS += t/unit/relay_test
t_unit_relay_test_SOURCES = t/unit/relay_test.c t/unit/tap.h \
	engine/relay.c engine/relay.h engine/relay_set.c engine/relay_int.h \
	engine/upstream.c engine/upstream.h \
	engine/proxyhdr.c engine/proxyhdr.h \
	engine/log.c engine/log.h
t_unit_relay_test_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSYSTEMD_CFLAGS)
t_unit_relay_test_LDADD = $(LIBEVENT_LIBS) $(LIBSYSTEMD_LIBS)

INTEGRATION_TESTS += t/limits.t

EXTRA_DIST += t/unit/relay.mk t/bench/latency-bench.sh t/bench/startup-bench.sh

# the display form of text from outside (engine/log.c)
check_PROGRAMS += t/unit/log_test
TESTS += t/unit/log_test
t_unit_log_test_SOURCES = t/unit/log_test.c t/unit/tap.h \
	engine/log.c engine/log.h
t_unit_log_test_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
t_unit_log_test_LDADD = $(LIBSYSTEMD_LIBS)
