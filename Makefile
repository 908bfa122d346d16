# sessiond — `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
# nextest runs test binaries in parallel processes; plain cargo test where it is missing.
TEST_RUNNER := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: help run build test fmt fmt-check lint unit bench fuzz-api quickstart cluster-demo

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## Serve at http://127.0.0.1:8080 (in-memory unless DATABASE_URL / REDIS_URL are set)
	SESSIOND_ENV=$${SESSIOND_ENV:-dev} $(CARGO) run --bin sessiond -- serve

build: ## Build the release binary (target/release/sessiond)
	$(CARGO) build --release --bin sessiond

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Fail on unformatted code
	$(CARGO) fmt --all -- --check

lint: ## clippy on every target and rustdoc (broken intra-doc links), warnings are errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace

unit: ## Only the fast tests: domain, memory, crypto, user-agent and app units (no services)
	$(CARGO) $(TEST_RUNNER) -p sessiond-domain -p sessiond-memory -p sessiond-jwt \
		-p sessiond-argon2 -p sessiond-useragent -p sessiond-app

# The API fuzzing runs before the test suite so that the suite's summary closes the output.
# The Redis Cluster backend's tests share one local cluster for the run (TEST_REDIS_CLUSTER_URLS);
# the cluster fault tests start their own.
test: fmt-check lint quickstart fuzz-api ## Everything: format, lint, the README's quick start, API fuzzing, unit, contract, HTTP and browser tests on real services (one server and a Redis Cluster)
	scripts/redis-cluster.sh run -- $(CARGO) $(TEST_RUNNER) --workspace

quickstart: ## Run the README's quick start as written against a fresh sessiond (needs curl, jq)
	CARGO="$(CARGO)" scripts/quickstart.sh

fuzz-api: ## schemathesis against /api/openapi.json of a live sessiond on PostgreSQL + Redis (~3.5 min; venv in target/)
	CARGO="$(CARGO)" scripts/fuzz-api.sh

cluster-demo: ## Redis Cluster + 3 sessiond instances + haproxy on this machine; prints the URL, Ctrl-C stops it (needs haproxy, redis-server)
	scripts/cluster-demo.sh

bench: ## Measure validate/refresh/sign-in, storage, cleanup, admin search and statistics against the targets; writes docs/BENCHMARKS.md (needs PostgreSQL and redis-server; ~15 min)
	$(CARGO) run --release -p sessiond-bench
