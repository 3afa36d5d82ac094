# SPDX-License-Identifier: MIT
# ctl/local.mk: nsrelayctl, the control socket's client: a program of its
# own, that shares no code with the daemon but the config library (for
# `check FILE`).  In bindir, not next to nsrelayd: members of
# control.group run it too (status, stats), not only root.

bin_PROGRAMS = nsrelayctl
nsrelayctl_SOURCES = ctl/nsrelayctl.c
nsrelayctl_CFLAGS = $(AM_CFLAGS)
# check FILE validates with the config library, as nsrelayd --check
nsrelayctl_LDADD = libnsrconfig.a $(LIBYAML_LIBS)
dist_man8_MANS += man/nsrelayctl.8
EXTRA_DIST += ctl/local.mk
