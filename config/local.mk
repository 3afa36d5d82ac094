# SPDX-License-Identifier: MIT
# config/: pure YAML -> struct config; also linked by the unit tests.
libnsrconfig_a_SOURCES = \
	config/config.c config/config.h config/internal.h \
	config/walk.c config/schema.c config/values.c config/check.c \
	config/util.c config/diff.c \
	$(NETNS_POOL_SOURCES)
libnsrconfig_a_CFLAGS = $(AM_CFLAGS) $(LIBYAML_CFLAGS)

# The file's reference: nsrelay.yaml(5).
dist_man5_MANS = man/nsrelay.yaml.5
