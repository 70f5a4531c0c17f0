# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
CARGO ?= cargo
JOBS ?= 2
CONFIG ?= conf/quickstart.yaml
RELEASE_BIN := target/release/portcullis
DEBUG_BIN := target/debug/portcullis

# command -> Debian package, installed with apt-get (as root) when the command is missing.
BUILD_TOOLS := cmake:cmake pkg-config:pkg-config cc:gcc python3:python3 curl:curl openssl:openssl
TEST_TOOLS := redis-server:redis-server promtool:prometheus kubectl:kubectl
BENCH_TOOLS := nginx:nginx haproxy:haproxy wrk:wrk
# Bench packages without a command: FILE:package, installed when FILE is missing (deps-bench turns
# each into true:package or /nonexistent:package for apt_install).
BENCH_FILES := /usr/lib/nginx/modules/ngx_http_modsecurity_module.so:libnginx-mod-http-modsecurity \
  /etc/modsecurity/crs/crs-setup.conf:modsecurity-crs \
  /usr/lib/python3/dist-packages/matplotlib/__init__.py:python3-matplotlib

define apt_install
	@missing=""; for pair in $(1); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q $$missing >/dev/null || \
	    { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$missing >/dev/null; }; \
	fi
endef

.PHONY: run test deps-build deps-test deps-bench build release fmt-check lint unit doc check-conf fuzz-smoke fuzz bench bench-reload soak clean

deps-build:
	$(call apt_install,$(BUILD_TOOLS))

deps-test: deps-build
	$(call apt_install,$(TEST_TOOLS))
	@command -v cargo-nextest >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest

deps-bench: deps-build
	$(call apt_install,$(BENCH_TOOLS) $(foreach f,$(BENCH_FILES),$(if $(wildcard $(firstword $(subst :, ,$(f)))),true,/nonexistent):$(lastword $(subst :, ,$(f)))))
	@command -v oha >/dev/null 2>&1 || $(CARGO) install --locked -j $(JOBS) oha

release: deps-build
	$(CARGO) build --release -j $(JOBS) -p portcullis

## make run: release build, two demo backends on :9001 and :9002, the gateway in the foreground.
run: release
	@scripts/run_quickstart.sh $(RELEASE_BIN) $(CONFIG)

build: deps-build
	$(CARGO) build -j $(JOBS) -p portcullis

fmt-check:
	$(CARGO) fmt --all -- --check

lint: deps-build
	$(CARGO) clippy -j $(JOBS) --workspace --all-targets -- -D warnings

unit: deps-test build
	PORTCULLIS_BIN=$(CURDIR)/$(DEBUG_BIN) $(CARGO) nextest run -j $(JOBS) --workspace

doc: deps-build
	$(CARGO) test -j $(JOBS) --doc --workspace

check-conf: build
	@scripts/example_certs.sh
	@set -e; for f in conf/*.yaml conf/examples/*.yaml; do \
	  echo "portcullis check --config $$f"; $(DEBUG_BIN) check --config $$f; done

## make test: everything CI runs.
test: deps-test fmt-check lint unit doc check-conf deploy-check fuzz-smoke

## make fuzz-smoke: every cargo-fuzz target for FUZZ_SECONDS (default 15) each.
fuzz-smoke:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-15} JOBS=$(JOBS) scripts/fuzz_smoke.sh

## make fuzz: long runs, FUZZ_SECONDS (default 600) per target, FUZZ_TARGETS to pick some; stops by itself.
fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} JOBS=$(JOBS) scripts/fuzz_smoke.sh

## make deploy-check: render and validate deploy/ offline (kustomize, schemas, rules, dashboard, configs).
deploy-check: build
	scripts/validate_deploy.sh

## make bench: nginx, HAProxy, nginx + ModSecurity and Portcullis side by side on this machine
## (bench/run.sh, ~10 min; BENCH_SCENARIOS picks some); results and plot in bench/out/, see
## docs/performance.md.
bench: deps-bench
	bench/run.sh

## make bench-reload: the release gateway with a 10 000-route config at a fixed request rate, with
## and without reloads of that config (bench/reload10k.sh, ~75 s; RELOAD_* variables tune it):
## reload durations, p50/p99/p99.9 and errors; report in bench/out/reload10k-*.json.
bench-reload: deps-bench
	bench/reload10k.sh

## make soak: the release gateway with auth, limits (Redis too) and WAF under mixed traffic for
## SOAK_SECONDS (default 300), with reloads; fails on errors, a death or RSS growth
## (scripts/soak.sh, docs/operations.md#soak-test). Report in bench/out/soak-*.
soak: deps-bench
	$(call apt_install,redis-server:redis-server)
	scripts/soak.sh

clean:
	$(CARGO) clean
