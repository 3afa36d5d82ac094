# SPDX-License-Identifier: MIT
# netns/: namespace handles, netlink, provisioning, discovery.
# NETNS_PROV_SOURCES is the provisioner alone (also in t/tools/nsprov).
NETNS_PROV_SOURCES = \
	netns/nl.c netns/nl.h \
	netns/provision.c netns/provision.h
NETNS_SOURCES = \
	netns/netns.c netns/netns.h \
	netns/discover.c netns/discover.h \
	netns/monitor.c netns/monitor.h \
	$(NETNS_PROV_SOURCES)
