# fuzz/fuzz.mk: builds and runs the libFuzzer harnesses (GNU make; called by
# `make fuzz`, `make fuzz-short` and `make fuzz-build` in Makefile.am, which
# pass top_srcdir, top_builddir, FUZZ_CC, HAVE_FUZZ, the library's source
# list and its dependencies' flags).  The library is compiled a second time
# here, by clang with the fuzzer's coverage instrumentation, ASan and UBSan,
# into fuzz/obj/: the gcc objects of the normal build are never touched.

FUZZ_SECONDS ?= 60
FUZZ_RSS_MB ?= 1024
FUZZ_ARGS ?=
OBJ := $(top_builddir)/fuzz/obj
BIN := $(top_builddir)/fuzz
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS ?= -g -O1
CPP := -I$(top_srcdir)/include -I$(top_srcdir)/src -I$(top_builddir) -I$(top_srcdir)/fuzz \
	-DKVN_SRCDIR='"$(top_srcdir)"' -DKVN_BUILDDIR='"$(top_builddir)"'
WARN := -Wall -Wextra -Wno-unused-parameter

LIB_C := $(filter %.c,$(FUZZ_LIB_SRCS))
LIB_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(LIB_C))
HARN_BIN := $(foreach h,$(FUZZ_HARNESSES),$(BIN)/fuzz_$(h))

vpath %.c $(top_srcdir) $(top_builddir)

.PHONY: build run clean check-tools
# the instrumented objects are not intermediate files: keep them
.SECONDARY:
check-tools:
	@if [ "$(HAVE_FUZZ)" != yes ]; then \
		echo "make fuzz: unavailable: configure found no clang that links -fsanitize=fuzzer" >&2; \
		echo "  (Debian: apt-get install clang libclang-rt-14-dev, then ./configure again," >&2; \
		echo "   or ./configure FUZZ_CC=/path/to/clang)" >&2; \
		exit 1; \
	fi

build: check-tools $(HARN_BIN)

# the library: instrumented for coverage, no libFuzzer main
$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC   $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) $(SAN) -fsanitize=fuzzer-no-link $(CPP) $(FUZZ_DEP_CFLAGS) \
		-MMD -MP -c $< -o $@

$(BIN)/fuzz_%: $(OBJ)/fuzz/fuzz_%.o $(LIB_OBJ)
	@echo "  FUZZLD   $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(SAN) -fsanitize=fuzzer $^ -o $@ $(FUZZ_DEP_LIBS)

# Each harness for FUZZ_SECONDS, one at a time.  First the committed
# reproducers fuzz/crashes/NAME-* run once each (regressions: each must pass
# now; the ones of known, unfixed bugs pass unless their switch is set, see
# fuzz/README.md).  New inputs go to fuzz/work/NAME (not committed); the
# committed seeds in fuzz/corpus/NAME are read only; a crash leaves
# fuzz/work/NAME-crash-* and fails the target.
run: build
	@set -e; for h in $(FUZZ_HARNESSES); do \
		mkdir -p $(BIN)/work/$$h; \
		set -- $(top_srcdir)/fuzz/crashes/$$h-*; \
		if [ -e "$$1" ]; then \
			$(BIN)/fuzz_$$h -rss_limit_mb=$(FUZZ_RSS_MB) "$$@" > $(BIN)/work/$$h-regress.log 2>&1 \
			|| { tail -n 40 $(BIN)/work/$$h-regress.log >&2; echo "fuzz: $$h: a committed reproducer fails again" >&2; exit 1; }; \
			echo "fuzz: $$h: $$# reproducer(s) in fuzz/crashes pass"; \
		fi; \
		echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
		$(BIN)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=$(FUZZ_RSS_MB) \
			-malloc_limit_mb=$(FUZZ_RSS_MB) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=$(BIN)/work/$$h- $(FUZZ_ARGS) \
			`test -f $(top_srcdir)/fuzz/$$h.dict && echo -dict=$(top_srcdir)/fuzz/$$h.dict` \
			`cat $(top_srcdir)/fuzz/$$h.options 2>/dev/null` \
			$(BIN)/work/$$h $(top_srcdir)/fuzz/corpus/$$h 2> $(BIN)/work/$$h.log \
			|| { tail -n 60 $(BIN)/work/$$h.log >&2; echo "fuzz: $$h FAILED (log: fuzz/work/$$h.log)" >&2; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|cov:' $(BIN)/work/$$h.log | tail -n 3; \
	done

clean:
	rm -rf $(OBJ) $(HARN_BIN) $(BIN)/work

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
