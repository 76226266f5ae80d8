# lumen -- build, test, bench, install, deps.
#
# Layout conventions this Makefile relies on (no per-file lists to edit):
#   runner/*.c              -> build/runner (main.c) + build/lib/librunner.a (the rest)
#   stages/common/*.c       -> build/lib/libcommon.a (shared by runner and stages)
#   kernels/*.c kernels/cpu/*.c -> build/lib/libengine.a (the training engine)
#   stages/<name>/*.c       -> build/plugins/<name>.so  + build/lib/libstage_<name>.a
#   plugins/examples/*.c    -> build/examples/<file>.so  (out-of-tree example)
#   tests/plugins/*.c       -> build/tests/plugins/<file>.so (test plugins)
#   tests/{unit,integration}/test_*.c -> build/tests/test_*  (cmocka), each
#                              linked with tests/support/*.c and every archive
#   tests/bench/*.c         -> build/bench/<file> (benchmark drivers; make bench
#                              runs tests/bench/run.sh)
#
# make SANITIZE=1 builds everything with ASan+UBSan into build-san/.

SHELL := /bin/bash
.DEFAULT_GOAL := all

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif
PREFIX ?= /usr/local
ARCH ?= -march=native
OPT ?= -O2 -g

LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)

CPPFLAGS += -Iplugins -Istages/common -Ikernels -Irunner $(LUA_CFLAGS) -D_GNU_SOURCE
CFLAGS += -std=c11 -Wall -Wextra $(OPT) $(ARCH) -fPIC -fvisibility=hidden -fopenmp \
          -MMD -MP $(SANFLAGS)
LDFLAGS += -fopenmp $(SANFLAGS) -Wl,--as-needed
LDLIBS += $(LUA_LIBS) -llmdb -lspng -lcjson -lxxhash -ldnnl -lcurl -lpng -lm -lpthread -ldl

# ---------------------------------------------------------------- sources --
RUNNER_SRCS := $(wildcard runner/*.c)
RUNNER_MAIN := runner/main.c
RUNNER_LIB_SRCS := $(filter-out $(RUNNER_MAIN),$(RUNNER_SRCS))
COMMON_SRCS := $(wildcard stages/common/*.c)
ENGINE_SRCS := $(wildcard kernels/*.c kernels/cpu/*.c)
STAGE_DIRS := $(filter-out stages/common,$(patsubst %/,%,$(dir $(wildcard stages/*/*.c))))
STAGES := $(sort $(notdir $(STAGE_DIRS)))
EXAMPLE_SRCS := $(wildcard plugins/examples/*.c)
TESTPLUGIN_SRCS := $(wildcard tests/plugins/*.c)
TEST_SRCS := $(wildcard tests/unit/test_*.c tests/integration/test_*.c)
SUPPORT_SRCS := $(wildcard tests/support/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# ------------------------------------------------------------------- CUDA --
# The cuda engine backend (kernels/cuda/) is built when nvcc and cuDNN's
# header are found under CUDA_HOME (CUDA=0 turns it off); else one line says
# it is skipped.  Only host code is needed to build: no GPU, no driver.
# Device code targets the H100/H200 (sm_90) plus PTX for newer GPUs.
# The backend is its own library, $(BUILD)/lib/liblumen_cuda.so, which the
# engine dlopens only when a cuda (or auto) engine is made: the runner, the
# plugins and the tests neither link nor load CUDA.  Inside it libcudart is
# static, cuDNN and cuBLAS dynamic (rpath CUDA_HOME/lib64; LD_LIBRARY_PATH
# may point elsewhere, e.g. a PyTorch wheel's nvidia/*/lib).  Without a GPU,
# a driver or those libraries the backend reports "no usable GPU: <why>"
# and auto uses the cpu.
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA ?= auto
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
# the oldest compute capability CUDA_ARCH runs on (older GPUs: "no usable GPU")
CUDA_MIN_CC ?= 90
ifneq ($(CUDA),0)
HAVE_CUDA := $(shell test -x $(NVCC) && test -f $(CUDA_HOME)/include/cudnn.h && \
    test -f $(CUDA_HOME)/include/cublas_v2.h && echo 1)
endif
ifeq ($(HAVE_CUDA),1)
CUDA_C_SRCS := $(wildcard kernels/cuda/*.c)
CUDA_CU_SRCS := $(wildcard kernels/cuda/*.cu)
CUDA_OBJS := $(call obj,$(CUDA_C_SRCS)) $(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(CUDA_CU_SRCS))
CUDA_LIB := $(BUILD)/lib/liblumen_cuda.so
CPPFLAGS += -DLUMEN_HAVE_CUDA -DNN_CUDA_MIN_CC=$(CUDA_MIN_CC) -isystem $(CUDA_HOME)/include
CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lcublas -lcudart_static \
    -lstdc++ -lrt -ldl -lpthread -lm
NVCCFLAGS ?= -O2 -std=c++17 --fmad=false $(CUDA_ARCH) -Xcompiler -fPIC,-Wall,-Wextra,-fvisibility=hidden
else ifeq ($(MAKELEVEL),0)
$(info cuda: backend not built ($(if $(filter 0,$(CUDA)),CUDA=0,no $(NVCC) or no cudnn.h/cublas_v2.h under CUDA_HOME=$(CUDA_HOME))))
endif
# nn_engine.c's object (which backends exist) follows the choice
CUDA_STAMP := $(BUILD)/cuda-config
$(shell mkdir -p $(BUILD) && (echo "$(HAVE_CUDA) $(CUDA_HOME)" | cmp -s - $(CUDA_STAMP) || \
    echo "$(HAVE_CUDA) $(CUDA_HOME)" > $(CUDA_STAMP)))
$(BUILD)/obj/kernels/nn_engine.o: $(CUDA_STAMP)

LIB_RUNNER := $(BUILD)/lib/librunner.a
LIB_COMMON := $(BUILD)/lib/libcommon.a
LIB_ENGINE := $(BUILD)/lib/libengine.a
STAGE_LIBS := $(foreach s,$(STAGES),$(BUILD)/lib/libstage_$(s).a)
PLUGINS := $(foreach s,$(STAGES),$(BUILD)/plugins/$(s).so)
EXAMPLES := $(patsubst plugins/examples/%.c,$(BUILD)/examples/%.so,$(EXAMPLE_SRCS))
TESTPLUGINS := $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(TESTPLUGIN_SRCS))
TESTS := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(TEST_SRCS)))
RUNNER := $(BUILD)/runner

# Order matters for static linking: later archives serve earlier ones.
ALL_ARCHIVES := $(STAGE_LIBS) $(LIB_RUNNER) $(LIB_ENGINE) $(LIB_COMMON)

# ----------------------------------------------------------------- builds --
.PHONY: all
all: $(RUNNER) $(PLUGINS) $(CUDA_LIB)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB_RUNNER): $(call obj,$(RUNNER_LIB_SRCS))
$(LIB_COMMON): $(call obj,$(COMMON_SRCS))
$(LIB_ENGINE): $(call obj,$(ENGINE_SRCS))
# the cuda backend: its own shared library, dlopen'ed by nn_engine.c when a
# cuda engine is asked for (so nothing else loads CUDA); self-contained
# (lm_util.o inside, --no-undefined)
ifeq ($(HAVE_CUDA),1)
$(CUDA_LIB): $(CUDA_OBJS) $(call obj,stages/common/lm_util.c)
	@mkdir -p $(@D)
	$(CC) -shared $(LDFLAGS) -Wl,--no-undefined -o $@ $^ $(CUDA_LDLIBS)
endif
$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -Ikernels -Ikernels/cuda -MMD -MP -MF $(@:.o=.d) -c $< -o $@
$(BUILD)/lib/%.a:
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

define stage_rules
$(BUILD)/lib/libstage_$(1).a: $(call obj,$(wildcard stages/$(1)/*.c))
	@mkdir -p $$(@D)
	@rm -f $$@
	ar rcs $$@ $$^
$(BUILD)/plugins/$(1).so: $(call obj,$(wildcard stages/$(1)/*.c)) $(LIB_ENGINE) $(LIB_COMMON)
	@mkdir -p $$(@D)
	$(CC) -shared $(LDFLAGS) -o $$@ $(call obj,$(wildcard stages/$(1)/*.c)) \
	    -Wl,--start-group $(LIB_ENGINE) $(LIB_COMMON) -Wl,--end-group $(LDLIBS)
endef
$(foreach s,$(STAGES),$(eval $(call stage_rules,$(s))))

# a group: libcommon's evaluate/loader call into libengine and back
$(RUNNER): $(call obj,$(RUNNER_MAIN)) $(LIB_RUNNER) $(LIB_ENGINE) $(LIB_COMMON)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $(call obj,$(RUNNER_MAIN)) \
	    -Wl,--start-group $(LIB_RUNNER) $(LIB_ENGINE) $(LIB_COMMON) -Wl,--end-group $(LDLIBS)

$(BUILD)/examples/%.so: plugins/examples/%.c plugins/lumen/plugin.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -Wall -Wextra -O2 -shared -fPIC $(SANFLAGS) -Iplugins -o $@ $<

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c plugins/lumen/plugin.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -Wall -Wextra -O2 -shared -fPIC $(SANFLAGS) -Iplugins -o $@ $< -lm

TEST_CPPFLAGS := -Itests/support -Irunner -Istages
define test_rule
$(BUILD)/tests/$(basename $(notdir $(1))): $(1) $(call obj,$(SUPPORT_SRCS)) $(ALL_ARCHIVES)
	@mkdir -p $$(@D)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $$@ $(1) $(call obj,$(SUPPORT_SRCS)) \
	    -Wl,--start-group $(ALL_ARCHIVES) -Wl,--end-group -lcmocka $(LDLIBS)
endef
$(foreach t,$(TEST_SRCS),$(eval $(call test_rule,$(t))))

# ------------------------------------------------------------------ tests --
LUMEN_DATA_TEST ?= $(firstword $(wildcard $(abspath ../shared/data/elpv) $(abspath data/elpv)))

# tests checks the Debian packages first (deps-check), then builds in a
# second make, so that no compile of a parallel build starts before a
# missing header is installed.
.PHONY: test tests test-binaries
tests: deps-check
	@$(MAKE) --no-print-directory test-binaries
test-binaries: all $(EXAMPLES) $(TESTPLUGINS) $(TESTS)
	@:
# PyTorch for the benchmarks and the torch interop test: the venv that
# `make torch-venv` makes.  Tests that need torch are skipped (saying so)
# when it is absent.
VENV ?= .venv
TORCH_PY := $(VENV)/bin/python
# `make test` prints each case, the skipped ones with their reason, and ends
# with "N passed, N failed, N skipped".  Labelled cells: tests generate their
# own (tests/support/ingest_fx.c); $LUMEN_DATA, by default the real ELPV
# set in ../shared/data/elpv or `make data`'s data/elpv when one is there,
# only adds the tests of the real set.
test: tests
	@LUMEN_TORCH_PYTHON=$${LUMEN_TORCH_PYTHON:-$(wildcard $(abspath $(TORCH_PY)))} \
	    LUMEN_BUILD=$(abspath $(BUILD)) LUMEN_SRC=$(abspath .) LUMEN_DATA=$${LUMEN_DATA:-$(LUMEN_DATA_TEST)} \
	    LUMEN_SANITIZE=$(SANITIZE) tests/run.sh $(TESTS)

# tests/unit/fake_device.c: a CPU stand-in for liblumen_cuda.so that
# test_engine_hooks loads through LUMEN_CUDA_BACKEND (the engine's device
# hooks and library loading, tested without a GPU)
FAKE_DEVICE := $(BUILD)/tests/libfake_device.so
$(FAKE_DEVICE): tests/unit/fake_device.c $(LIB_ENGINE) $(LIB_COMMON)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared $(LDFLAGS) -o $@ $< \
	    -Wl,--start-group $(LIB_ENGINE) $(LIB_COMMON) -Wl,--end-group $(LDLIBS)
test-binaries: $(FAKE_DEVICE)

# GPU tests: tests/gpu/test_*.c -> $(BUILD)/tests/gpu/test_* (cmocka, linked
# like the tests), built by `make tests` (so CI compiles them), run by `make
# test-gpu`: the cuda backend against the cpu backend and the reference
# layers.  Without a cuda build or a usable GPU every case SKIPs, saying why.
# tests/gpu/device-check.sh runs them (and the benchmark) on a lent GPU.
GPU_TEST_SRCS := $(wildcard tests/gpu/test_*.c)
GPU_TESTS := $(patsubst tests/gpu/%.c,$(BUILD)/tests/gpu/%,$(GPU_TEST_SRCS))
$(BUILD)/tests/gpu/%: tests/gpu/%.c $(call obj,$(SUPPORT_SRCS)) $(ALL_ARCHIVES) $(CUDA_OBJS) $(CUDA_LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(call obj,$(SUPPORT_SRCS)) \
	    $(CUDA_OBJS) -Wl,--start-group $(ALL_ARCHIVES) -Wl,--end-group -lcmocka $(LDLIBS) $(CUDA_LDLIBS)
test-binaries: $(GPU_TESTS)
.PHONY: test-gpu
test-gpu: tests
	@LUMEN_BUILD=$(abspath $(BUILD)) LUMEN_SRC=$(abspath .) LUMEN_SANITIZE=$(SANITIZE) \
	    LUMEN_FIXTURES=$(abspath tests/fixtures) tests/run.sh $(GPU_TESTS)

# torch, numpy and safetensors from PyPI (the default wheel) in $(VENV), for
# the benchmarks (tests/bench/engine_vs_torch.sh), tests/torch and the torch
# interop test (a few GB: the default wheel brings CUDA libraries).  Nothing
# is done when $(TORCH_PY) already imports all three; an existing venv
# without them is completed, not remade.  `python3 -m venv` needs Debian's
# python3-venv (checked like deps-check).
.PHONY: torch-venv
torch-venv:
	@if [ -x $(TORCH_PY) ] && $(TORCH_PY) -c 'import torch, numpy, safetensors' 2>/dev/null; then \
	    echo "torch-venv: $(VENV) has torch $$($(TORCH_PY) -c 'import torch; print(torch.__version__)')"; \
	else set -e; \
	    if [ ! -x $(TORCH_PY) ]; then \
	        $(call deps_check,python3-venv); \
	        python3 -m venv $(VENV); \
	    fi; \
	    $(TORCH_PY) -m pip install -q --upgrade pip; \
	    $(TORCH_PY) -m pip install -q torch numpy safetensors; \
	    echo "torch-venv: torch $$($(TORCH_PY) -c 'import torch; print(torch.__version__)') in $(VENV)"; \
	fi

# ------------------------------------------------------------------ bench --
# tests/bench/*.c -> $(BUILD)/bench/<name>: small drivers linked like the tests
# (every archive), without cmocka.
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCHES := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
$(BUILD)/bench/%: tests/bench/%.c $(ALL_ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(TEST_CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	    -Wl,--start-group $(ALL_ARCHIVES) -Wl,--end-group $(LDLIBS)

.PHONY: bench benches
benches: $(BENCHES)
bench: all $(BENCHES)
	@LUMEN_BUILD=$(abspath $(BUILD)) LUMEN_DATA=$${LUMEN_DATA:-$(LUMEN_DATA_TEST)} tests/bench/run.sh

# --------------------------------------------------------- deps/data/run --
DEB_PACKAGES := gcc make pkg-config python3 python3-pip liblua5.4-dev liblmdb-dev \
    libcurl4-openssl-dev libspng-dev libdnnl-dev libcmocka-dev libcjson-dev libxxhash-dev libpng-dev

# $(call deps_missing,PKGS) sets $$missing to those of the Debian packages
# PKGS that are not installed (none where there is no dpkg: not a Debian
# system, nothing to check); $(DEPS_INSTALL) installs $$missing with apt-get
# (sudo unless root); $(call deps_check,PKGS) is the cheap check: silent when
# all is there, installs the missing ones as root, else stops with one line
# naming the command to run.  No $(MAKE) in these recipes, so `make -n`
# stays a dry run.
deps_missing = missing=$$(command -v dpkg-query >/dev/null || exit 0; for p in $(1); do \
    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done)
DEPS_INSTALL = echo "installing:" $$missing; \
    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing
deps_check = $(call deps_missing,$(1)); \
    if [ -z "$$missing" ]; then :; \
    elif [ "$$(id -u)" = 0 ]; then $(DEPS_INSTALL); \
    else echo "missing Debian packages:" $$missing "-- run: sudo apt-get install" $$missing >&2; exit 1; fi

# A one-node Slurm cluster for tests/integration/test_slurm.c (the sweep
# executor lumen.slurm): `make deps` installs it; `make tests` does not need
# it (those tests are skipped, saying so, without it).
SLURM_PACKAGES := slurmctld slurmd slurm-client munge

.PHONY: deps deps-check slurm-deps
deps: slurm-deps
	@$(call deps_missing,$(DEB_PACKAGES)); \
	if [ -n "$$missing" ]; then $(DEPS_INSTALL); \
	else echo "deps: all installed"; fi

slurm-deps:
	@$(call deps_missing,$(SLURM_PACKAGES)); \
	if [ -n "$$missing" ]; then $(DEPS_INSTALL); \
	else echo "slurm-deps: all installed"; fi

# What `make tests` / `make test` start with (a dpkg query, ~0.15 s).
deps-check:
	@$(call deps_check,$(DEB_PACKAGES))

ELPV_WHEEL := elpv-dataset==1.0.0.post1
.PHONY: data
data:
	@if [ -n "$$LUMEN_DATA" ]; then echo "data: using LUMEN_DATA=$$LUMEN_DATA"; \
	elif [ -f data/elpv/labels.csv ]; then echo "data: data/elpv present"; \
	else set -e; rm -rf build/dl data/elpv.tmp; mkdir -p build/dl data; \
	    python3 -m pip download -q --no-deps "$(ELPV_WHEEL)" -d build/dl; \
	    python3 -c 'import sys,zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
	        build/dl/elpv_dataset-*.whl data/elpv.tmp; \
	    mv data/elpv.tmp/elpv_dataset/data data/elpv; rm -rf data/elpv.tmp build/dl; \
	    echo "data: ELPV images and labels.csv in data/elpv"; fi

# The main job: experiments/aug_sweep.lua, the augmentation study (5 variants
# x 3 seeds, ~15 min on a 2-core AVX-512 Xeon, ~35 min on a 2-core Zen 3).
# EXPERIMENT=experiments/baseline.lua make run trains the full-size recipe.
# The public ELPV download (`make data`) has only labels.csv; there the
# experiments train ELPV's own label, `defective` (probability >= 0.5), and
# say so.
EXPERIMENT ?= experiments/aug_sweep.lua
.PHONY: run
run: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory data
	@data=$${LUMEN_DATA:-data/elpv}; set -- "$(EXPERIMENT)"; \
	if [ "$(EXPERIMENT)" = experiments/baseline.lua ] && [ ! -f "$$data/data.csv" ]; then \
	    echo "run: $$data has no data.csv (crack/inactive labels); training ELPV's 'defective' label from labels.csv"; \
	    set -- "$(EXPERIMENT)" --set "ingest.csv=$$data/labels.csv"; \
	fi; \
	echo "LUMEN_DATA=$$data $(RUNNER) $$*"; \
	LUMEN_DATA=$$data $(RUNNER) "$$@"

# ---------------------------------------------------------------- install --
.PHONY: install
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/lumen/plugins \
	    $(DESTDIR)$(PREFIX)/share/lumen/lua $(DESTDIR)$(PREFIX)/include/lumen
	install -m 755 $(RUNNER) $(DESTDIR)$(PREFIX)/bin/runner
	$(if $(PLUGINS),install -m 755 $(PLUGINS) $(DESTDIR)$(PREFIX)/lib/lumen/plugins/)
	$(if $(CUDA_LIB),install -m 755 $(CUDA_LIB) $(DESTDIR)$(PREFIX)/lib/lumen/)
	install -m 644 lua/*.lua $(DESTDIR)$(PREFIX)/share/lumen/lua/
	install -m 644 plugins/lumen/plugin.h $(DESTDIR)$(PREFIX)/include/lumen/

.PHONY: clean
clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
