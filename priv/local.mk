# SPDX-License-Identifier: MIT
# priv/: the privileged helper of nsrelayd - what runs with privilege and
# the gate in front of it (see priv/helper.c), and the seccomp lists and
# capability sets of both processes (priv/sandbox.c).
PRIV_SOURCES = \
	priv/helper.c priv/helper.h \
	priv/proto.c priv/proto.h \
	priv/gate.c priv/gate.h \
	priv/hostsfile.c priv/hostsfile.h \
	priv/sandbox.c priv/sandbox.h
EXTRA_DIST += priv/local.mk

# the decoder and the gate alone
check_PROGRAMS += t/unit/priv_test
TESTS += t/unit/priv_test
t_unit_priv_test_SOURCES = t/unit/priv_test.c t/unit/tap.h \
	priv/proto.c priv/proto.h priv/gate.c priv/gate.h \
	$(NETNS_POOL_SOURCES)
t_unit_priv_test_CFLAGS = $(AM_CFLAGS) $(LIBMNL_CFLAGS)
t_unit_priv_test_LDADD = $(LIBMNL_LIBS)

# the engine's seccomp list kills what it must
check_PROGRAMS += t/unit/sandbox_test
TESTS += t/unit/sandbox_test
t_unit_sandbox_test_SOURCES = t/unit/sandbox_test.c t/unit/tap.h \
	priv/sandbox.c priv/sandbox.h
t_unit_sandbox_test_CFLAGS = $(AM_CFLAGS) $(LIBSECCOMP_CFLAGS)
t_unit_sandbox_test_LDADD = $(LIBSECCOMP_LIBS)

# nspriv: asks the helper what the engine never would (t/privsep.t)
check_PROGRAMS += t/tools/nspriv
t_tools_nspriv_SOURCES = t/tools/nspriv.c engine/privc.c engine/privc.h \
	engine/log.c engine/log.h $(PRIV_SOURCES) $(NETNS_PROV_SOURCES)
t_tools_nspriv_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBMNL_CFLAGS) \
	$(LIBSYSTEMD_CFLAGS) $(LIBSECCOMP_CFLAGS) -pthread
t_tools_nspriv_LDADD = libnsrconfig.a $(LIBEVENT_LIBS) $(LIBMNL_LIBS) \
	$(LIBYAML_LIBS) $(LIBSYSTEMD_LIBS) $(LIBSECCOMP_LIBS) -lpthread

INTEGRATION_TESTS += t/privsep.t
EXTRA_DIST += t/privsep.t

# the helper's decoders on arbitrary bytes: the corpus replayed in make
# check (t/fuzz/local.mk has the libFuzzer build: make fuzz)
check_PROGRAMS += t/fuzz/replay-priv
TESTS += t/fuzz/replay-priv
t_fuzz_replay_priv_SOURCES = t/fuzz/replay.c t/fuzz/fuzz.h \
	t/fuzz/fuzz_priv.c priv/proto.c priv/proto.h priv/gate.c priv/gate.h \
	$(NETNS_POOL_SOURCES)
t_fuzz_replay_priv_CFLAGS = $(AM_CFLAGS) $(LIBMNL_CFLAGS) \
	-DFUZZ_CORPUS='"$(abs_top_srcdir)/t/fuzz/corpus/priv"'
t_fuzz_replay_priv_LDADD = $(LIBMNL_LIBS)
FUZZ_PRIV_C = priv/proto.c priv/gate.c netns/pool.c
t/fuzz/fuzz-priv: $(FUZZ_PRIV_C) t/fuzz/fuzz_priv.c
	$(AM_V_CCLD)$(MKDIR_P) t/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) \
		$(AM_CPPFLAGS) $(LIBMNL_CFLAGS) -o $@ $(srcdir)/t/fuzz/fuzz_priv.c \
		`for f in $(FUZZ_PRIV_C); do echo $(srcdir)/$$f; done` \
		$(LIBMNL_LIBS)
fuzz: t/fuzz/fuzz-priv
