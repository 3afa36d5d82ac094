# SPDX-License-Identifier: MIT
# t/fuzz/: libFuzzer targets for the config loader, the control-line parser
# and the metrics endpoint's request heads, and their corpora.
#
#   make check      replays t/fuzz/corpus/<target>/ through each target,
#                   built with the normal compiler (under ASan and UBSan in a
#                   --enable-sanitizers build)
#   make fuzz       builds t/fuzz/fuzz-<target> with clang and libFuzzer;
#                   run one with its corpus, e.g.
#     t/fuzz/fuzz-config -dict=$(srcdir)/t/fuzz/config.dict \
#         -max_total_time=600 NEW_DIR $(srcdir)/t/fuzz/corpus/config
#                   then keep what is worth keeping (minimised crashes,
#                   `-merge=1` into the corpus).

FUZZ_TARGETS = config ctlproto httpreq
FUZZ_REPLAYS = t/fuzz/replay-config t/fuzz/replay-ctlproto \
	t/fuzz/replay-httpreq
check_PROGRAMS += $(FUZZ_REPLAYS)
TESTS += $(FUZZ_REPLAYS)

t_fuzz_replay_config_SOURCES = t/fuzz/replay.c t/fuzz/fuzz.h \
	t/fuzz/fuzz_config.c
t_fuzz_replay_config_CFLAGS = $(AM_CFLAGS) \
	-DFUZZ_CORPUS='"$(abs_top_srcdir)/t/fuzz/corpus/config"'
t_fuzz_replay_config_LDADD = libnsrconfig.a $(LIBYAML_LIBS)

t_fuzz_replay_ctlproto_SOURCES = t/fuzz/replay.c t/fuzz/fuzz.h \
	t/fuzz/fuzz_ctlproto.c engine/ctlproto.c engine/ctlproto.h
t_fuzz_replay_ctlproto_CFLAGS = $(AM_CFLAGS) \
	-DFUZZ_CORPUS='"$(abs_top_srcdir)/t/fuzz/corpus/ctlproto"'

t_fuzz_replay_httpreq_SOURCES = t/fuzz/replay.c t/fuzz/fuzz.h \
	t/fuzz/fuzz_httpreq.c engine/httpreq.c engine/httpreq.h
t_fuzz_replay_httpreq_CFLAGS = $(AM_CFLAGS) \
	-DFUZZ_CORPUS='"$(abs_top_srcdir)/t/fuzz/corpus/httpreq"'

# The libFuzzer builds: clang only, outside automake's programs so that the
# normal build never needs clang.  Sources are listed here, not taken from
# the _SOURCES above, so that each fuzzer is one clang command.
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CONFIG_C = config/config.c config/walk.c config/schema.c \
	config/values.c config/check.c config/util.c config/diff.c netns/pool.c
FUZZ_CTLPROTO_C = engine/ctlproto.c
FUZZ_HTTPREQ_C = engine/httpreq.c

fuzz: t/fuzz/fuzz-config t/fuzz/fuzz-ctlproto t/fuzz/fuzz-httpreq
t/fuzz/fuzz-config: $(libnsrconfig_a_SOURCES) t/fuzz/fuzz_config.c
	$(AM_V_CCLD)$(MKDIR_P) t/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) \
		$(AM_CPPFLAGS) $(LIBYAML_CFLAGS) -o $@ \
		$(srcdir)/t/fuzz/fuzz_config.c \
		`for f in $(FUZZ_CONFIG_C); do echo $(srcdir)/$$f; done` \
		$(LIBYAML_LIBS)
t/fuzz/fuzz-ctlproto: $(FUZZ_CTLPROTO_C) t/fuzz/fuzz_ctlproto.c
	$(AM_V_CCLD)$(MKDIR_P) t/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) \
		$(AM_CPPFLAGS) -o $@ $(srcdir)/t/fuzz/fuzz_ctlproto.c \
		$(srcdir)/engine/ctlproto.c
t/fuzz/fuzz-httpreq: $(FUZZ_HTTPREQ_C) t/fuzz/fuzz_httpreq.c
	$(AM_V_CCLD)$(MKDIR_P) t/fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) \
		$(AM_CPPFLAGS) -o $@ $(srcdir)/t/fuzz/fuzz_httpreq.c \
		$(srcdir)/engine/httpreq.c
.PHONY: fuzz
DISTCLEANFILES = t/fuzz/fuzz-config t/fuzz/fuzz-ctlproto t/fuzz/fuzz-httpreq

EXTRA_DIST += t/fuzz/local.mk t/fuzz/config.dict t/fuzz/corpus
