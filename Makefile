# Sesame: one entry point for people and CI. `make` lists the targets.
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help run build test test-unit test-e2e lint fmt migrate ci security-coverage ops-check

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: ## Run Sesame with the embedded default (SQLite ./data/sesame.db, in-process store, http://127.0.0.1:8080)
	$(CARGO) run --release --bin sesame -- serve

build: ## Build the release binary (target/release/sesame)
	$(CARGO) build --release --bin sesame

test: ## Run every test: unit, then end-to-end on SQLite + in-process and on PostgreSQL + Redis
	bash tests/run-suite.sh

security-coverage: ## Regenerate docs/security-coverage.md from the last test runs' reports
	python3 tests/security-coverage.py

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

migrate: ## Apply database migrations for the configuration in use
	$(CARGO) run --release --bin sesame -- migrate

ops-check: ## The alert rules pass promtool's check and their unit tests; the dashboard is JSON
	promtool check rules deploy/prometheus/sesame-alerts.yml
	cd deploy/prometheus && promtool test rules sesame-alerts.test.yml
	python3 -m json.tool deploy/grafana/sesame-dashboard.json > /dev/null

ci: ## Exactly what CI runs
	bash .ci/run

.PHONY: bench bench-large

bench: ## Benchmarks: release build, PostgreSQL + Redis, every scenario against its ceiling; writes docs/benchmarks.md
	bash bench/run.sh

bench-large: ## As bench, plus the login with 1,000,000 accounts, sesame import of 100,000 people, 100,000 live sessions, two instances
	bash bench/run.sh --large

.PHONY: openapi

openapi: ## Rewrite docs/admin-api.openapi.json from the code (an e2e test fails when it differs from what Sesame serves)
	$(CARGO) run --quiet --bin sesame -- openapi > docs/admin-api.openapi.json

.PHONY: faults fuzz soak

faults: ## Fault suite (security spec F rows): own PostgreSQL, Redis, SMTP and fault proxies, two instances under load; ~2 min
	bash tests/run-faults.sh

soak: ## The fault suite with an hour-long soak (security spec C17) instead of CI's minute
	bash tests/run-faults.sh --soak-secs 3600

fuzz: ## Property tests of the parsers and writers with many cases (PROPTEST_CASES, default 20000)
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) nextest run --workspace --exclude sesame-tests -E 'test(/prop_/)'

.PHONY: deny deny-advisories machete docker-check

deny: ## Supply chain: licences, banned crates and sources of every dependency (cargo-deny)
	$(CARGO) deny --all-features check --hide-inclusion-graph licenses bans sources

deny-advisories: ## RustSec advisories of every dependency (cargo-deny; needs GitHub, unreachable from CI)
	$(CARGO) deny --all-features check advisories

machete: ## Dependencies declared but not used (cargo-machete)
	$(CARGO) machete

docker-check: ## Check docker-compose.yml and the Dockerfile without Docker, and run the image's build steps
	bash tests/check-docker.sh
