# Flamboyance: the three commands a user needs. Each installs its dependencies first
# (scripts/setup.sh, idempotent) and builds into build/.
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=
CMAKE_ARGS ?=
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300

PREFIX ?= $(HOME)/.local

.PHONY: all setup build test demo bench fuzz install clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@$(BUILD)/flam --version
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

demo: build
	@bash scripts/demo.sh

bench: build
	@bash bench/run_all.sh $(BUILD)

# The libFuzzer targets of tests/fuzz/ (clang, ASan + UBSan, torch-free), FUZZ_SECONDS each.
fuzz: setup
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DFLAM_FUZZ=ON -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BUILD)

# bin/flam, its shared modules in lib/, and bash completion under PREFIX (default ~/.local).
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
