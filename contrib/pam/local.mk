# SPDX-License-Identifier: MIT
# contrib/pam/: pam_nsrelay.so, the PAM session module.  No libtool: one
# plain -shared link, installed like Debian's own modules (mode 0644) into
# $(pamdir), libpam's security directory unless --with-pamdir says.
PAM_MODULE_FILES = \
	contrib/pam/pam_nsrelay.c \
	contrib/pam/nsrpam.c contrib/pam/nsrpam.h
pam_DATA = contrib/pam/pam_nsrelay.so
dist_man8_MANS = man/pam_nsrelay.8

# only pam_sm_* are exported (-fvisibility=hidden); -z defs: every symbol
# resolved at link time, not at a login
contrib/pam/pam_nsrelay.so: $(PAM_MODULE_FILES)
	$(AM_V_CCLD)$(MKDIR_P) contrib/pam && \
	$(CC) $(DEFS) -I$(top_srcdir) $(CPPFLAGS) $(PAM_CFLAGS) $(AM_CFLAGS) $(CFLAGS) \
		-fPIC -fvisibility=hidden -shared -Wl,-z,defs -Wl,-z,now \
		-o $@ $(srcdir)/contrib/pam/pam_nsrelay.c \
		$(srcdir)/contrib/pam/nsrpam.c \
		$(AM_LDFLAGS) $(LDFLAGS) $(PAM_LIBS)
MOSTLYCLEANFILES = contrib/pam/pam_nsrelay.so

# the module's logic alone, under the sanitizers of the build
check_PROGRAMS += t/unit/pam_test
TESTS += t/unit/pam_test
t_unit_pam_test_SOURCES = t/unit/pam_test.c t/unit/tap.h \
	contrib/pam/nsrpam.c contrib/pam/nsrpam.h

INTEGRATION_TESTS += t/pam.t t/pam-ssh.t t/pam-control.t
EXTRA_DIST += contrib/pam/local.mk t/pam-lib.sh \
	$(PAM_MODULE_FILES)

# distcheck installs under its own prefix, never into the host's PAM
AM_DISTCHECK_CONFIGURE_FLAGS = --with-pamdir='$${libdir}/security'
