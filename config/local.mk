# SPDX-License-Identifier: MIT
# config/: pure YAML -> struct config; also linked by the unit tests.
libnsrconfig_a_SOURCES = config/config.c config/config.h
libnsrconfig_a_CFLAGS = $(AM_CFLAGS) $(LIBYAML_CFLAGS)
