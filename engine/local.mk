# SPDX-License-Identifier: MIT
# engine/local.mk: the tests of the control socket's status side and of
# the metrics endpoint (nsrelayd itself is in Makefile.am).

EXTRA_DIST += engine/local.mk
INTEGRATION_TESTS += t/stats.t t/nsrelayctl.t t/status-abuse.t
EXTRA_DIST += t/stats.t t/nsrelayctl.t t/status-abuse.t
INTEGRATION_TESTS += t/metrics.t t/metrics-abuse.t
EXTRA_DIST += t/metrics.t t/metrics-abuse.t

# the metrics endpoint's judgement of request heads (engine/httpreq.c)
check_PROGRAMS += t/unit/httpreq_test
TESTS += t/unit/httpreq_test
t_unit_httpreq_test_SOURCES = t/unit/httpreq_test.c t/unit/tap.h \
	engine/httpreq.c engine/httpreq.h

# PROXY protocol headers, byte for byte (engine/proxyhdr.c)
check_PROGRAMS += t/unit/proxyhdr_test
TESTS += t/unit/proxyhdr_test
t_unit_proxyhdr_test_SOURCES = t/unit/proxyhdr_test.c t/unit/tap.h \
	engine/proxyhdr.c engine/proxyhdr.h
