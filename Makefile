# Flamboyance: the three commands a user needs. Each installs its dependencies first
# (scripts/setup.sh, idempotent) and builds into build/.
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all setup build test demo bench clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@$(BUILD)/flam --version
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

demo: build
	@bash scripts/demo.sh

bench: build
	@bash bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD)
