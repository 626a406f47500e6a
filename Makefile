# Every target sets up what it needs, so each works on a fresh clone.
SHELL := bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup system-deps lint test test-unit crds demo bench soak clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.synced ## create .venv with every dependency (from uv.lock)

$(VENV)/.synced: pyproject.toml uv.lock hack/setup-python.sh
	bash hack/setup-python.sh
	touch $@

system-deps: ## install Debian's prometheus, nginx and lua (as root, only when missing)
	bash hack/system-deps.sh

lint: setup ## ruff, mypy and the import contracts (.importlinter), all clean
	$(VENV)/bin/ruff check operator tests bentos bench hack/devenv
	$(VENV)/bin/ruff format --check operator tests bentos bench hack/devenv
	$(VENV)/bin/mypy operator/rollforward tests bentos bench hack/devenv
	PYTHONPATH=operator $(VENV)/bin/lint-imports --no-cache

crds: setup ## regenerate crds/ from the API types
	$(VENV)/bin/rollforward crd --output crds/modeldeployments.rollforward.io.yaml

test-unit: setup ## only the unit tests (no processes)
	$(PY) -m pytest -m unit -q

# The e2e alone first: its bound on the failed requests of a bad canary needs a quiet
# machine. Then the integration and unit tests on TEST_WORKERS pytest-xdist workers, whole
# modules each, the real-node modules one after another (tests/fixtures/suite_order.py).
# Both runs always go; the target fails when either fails. -rA shows what the e2e says
# (lost requests, the bad candidate's own 503s) also when it passes.
TEST_WORKERS ?= 2
# The images are built once, before both runs (their warm rebuild alone takes minutes).
test: setup system-deps node-deps cluster-bin images ## every test: the e2e alone, then integration and unit on 2 workers
	status=0; export ROLLFORWARD_IMAGES_PREBUILT=1; \
	$(PY) -m pytest -q -rA --durations=10 tests/e2e || status=$$?; \
	$(PY) -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		tests/integration tests/unit || status=$$?; \
	exit $$status

# 200 operator kills: SOAK_KILLS operator processes SIGKILLed, SOAK_KILLS_PER_ROUND of them in
# turn (each restarted at once) amid each round's SOAK_FLOWS concurrent roll-forwards (one per
# namespace), so every kill lands at a moment of each flow: 20 rounds, 2000 kill moments.
# Measured on 2 cores: the pytest session took 15 min 37 s (4.6 s per kill, restart included).
SOAK_KILLS ?= 200
SOAK_KILLS_PER_ROUND ?= 10
SOAK_FLOWS ?= 10
soak: setup system-deps cluster-bin ## chaos soak: SOAK_KILLS (200) operator kills, SOAK_KILLS_PER_ROUND (10) a round amid SOAK_FLOWS (10) flows, report in bench-results/soak.md
	mkdir -p bench-results _out
	# A temp dir of its own: pytest deletes all but the newest three of the shared ones, so
	# other pytest sessions of the same user would delete the soak's cluster under it.
	ROLLFORWARD_CHAOS_KILLS=$(SOAK_KILLS) ROLLFORWARD_CHAOS_KILLS_PER_ROUND=$(SOAK_KILLS_PER_ROUND) \
		ROLLFORWARD_CHAOS_FLOWS=$(SOAK_FLOWS) \
		ROLLFORWARD_CHAOS_REPORT=bench-results/soak.md \
		$(PY) -m pytest -q -s -p no:cacheprovider --basetemp=_out/soak-tmp \
		tests/integration/test_chaos.py

clean: ## remove what the targets made here (.venv, _out, bench-results, demo-report); the cache in ~/.cache/rollforward stays
	rm -rf $(VENV) _out bench-results demo-report .pytest_cache .mypy_cache .ruff_cache

include hack/*.mk
