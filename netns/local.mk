# SPDX-License-Identifier: MIT
# netns/: namespace handles, netlink, provisioning, discovery.
# NETNS_POOL_SOURCES: templates, pools and specs; pure (libc only), also
# linked by the config loader to check pools and templates.
NETNS_POOL_SOURCES = \
	netns/pool.c netns/pool.h
# NETNS_PROV_SOURCES is the provisioner alone (also in t/tools/nsprov).
NETNS_PROV_SOURCES = \
	$(NETNS_POOL_SOURCES) \
	netns/netns.c netns/netns.h \
	netns/nsops.c netns/nsops.h \
	netns/nl.c netns/nl.h \
	netns/provision.c netns/provision.h netns/prov_int.h \
	netns/prov_plan.c netns/prov_read.c netns/prov_send.c \
	netns/prov_ns.c netns/prov_work.c netns/prov_gone.c \
	netns/offload.c netns/offload.h
NETNS_SOURCES = \
	netns/discover.c netns/discover.h \
	netns/monitor.c netns/monitor.h \
	$(NETNS_PROV_SOURCES)
