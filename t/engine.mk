# SPDX-License-Identifier: MIT
# Tests of the engine's guards: hostile namespaces, the control socket,
# restarts, limits, and the relay alone.

INTEGRATION_TESTS += t/hostile-ns.t
EXTRA_DIST += t/hostile-ns.t
INTEGRATION_TESTS += t/dirwatch.t
EXTRA_DIST += t/dirwatch.t
INTEGRATION_TESTS += t/dirwatch-names.t
EXTRA_DIST += t/dirwatch-names.t
INTEGRATION_TESTS += t/control-abuse.t
EXTRA_DIST += t/control-abuse.t
INTEGRATION_TESTS += t/restart.t
EXTRA_DIST += t/restart.t
INTEGRATION_TESTS += t/hostsfile.t
EXTRA_DIST += t/hostsfile.t
INTEGRATION_TESTS += t/provision-race.t
EXTRA_DIST += t/provision-race.t
INTEGRATION_TESTS += t/svclimit.t
EXTRA_DIST += t/svclimit.t
INTEGRATION_TESTS += t/stop-provision.t
EXTRA_DIST += t/stop-provision.t
INTEGRATION_TESTS += t/provision-many.t
EXTRA_DIST += t/provision-many.t
INTEGRATION_TESTS += t/nodelay.t
EXTRA_DIST += t/nodelay.t
INTEGRATION_TESTS += t/reload-state.t
EXTRA_DIST += t/reload-state.t
INTEGRATION_TESTS += t/names.t
EXTRA_DIST += t/names.t
INTEGRATION_TESTS += t/fairshare.t
EXTRA_DIST += t/fairshare.t
INTEGRATION_TESTS += t/upstream-failover.t
EXTRA_DIST += t/upstream-failover.t
INTEGRATION_TESTS += t/upstream-check.t
EXTRA_DIST += t/upstream-check.t
INTEGRATION_TESTS += t/upstream-mariadb.t
EXTRA_DIST += t/upstream-mariadb.t
INTEGRATION_TESTS += t/upstream-dns.t
EXTRA_DIST += t/upstream-dns.t
INTEGRATION_TESTS += t/proxy-protocol.t
EXTRA_DIST += t/proxy-protocol.t
INTEGRATION_TESTS += t/proxy-mariadb.t
EXTRA_DIST += t/proxy-mariadb.t
INTEGRATION_TESTS += t/udp-relay.t
EXTRA_DIST += t/udp-relay.t
INTEGRATION_TESTS += t/udp-dns.t t/udp-load.t
EXTRA_DIST += t/udp-dns.t t/udp-load.t t/tools/dnsq.py
