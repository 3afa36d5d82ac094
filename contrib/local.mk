# SPDX-License-Identifier: MIT
# contrib/local.mk: what `make install` puts on a host besides the daemon:
# the systemd unit, the README and example config under docdir, the
# manual nsrelayd(8); and the operations tests (reload, sd_notify, stop,
# install).
#
# One story for the paths: the unit, the daemon's default -c and the
# Documentation= links all come from ./configure's directories, so they
# agree whatever the prefix.  A system install is
#   ./configure --prefix=/usr --sysconfdir=/etc
# (unit in /usr/lib/systemd/system, config /etc/nsrelay/nsrelay.yaml); the
# default prefix gives /usr/local/lib/systemd/system, which systemd also
# reads, and /usr/local/etc/nsrelay/nsrelay.yaml.

systemdsystemunit_DATA = contrib/nsrelay.service
dist_doc_DATA = README.md contrib/nsrelay.yaml
dist_man8_MANS += man/nsrelayd.8

contrib/nsrelay.service: contrib/nsrelay.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' \
	    -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	    -e 's|@docdir[@]|$(docdir)|g' \
		$(srcdir)/contrib/nsrelay.service.in > $@.tmp && \
	mv $@.tmp $@
CLEANFILES = contrib/nsrelay.service

INTEGRATION_TESTS += t/sdnotify.t t/reload.t t/stop.t t/install.t
EXTRA_DIST += contrib/local.mk t/tools/reload_traffic.py

