# The only set-up a new user needs: `make demo` runs the main job, `make test` runs every test.
# Each target installs whatever is missing first (uv, then the locked environment).
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
# Python keeps its bytecode caches (.pyc). Where the environment sets PYTHONDONTWRITEBYTECODE (this machine's
# does), every process compiled again every module it imports: each test worker, each process of the local
# stack's Airflow and moto_server, each CLI run; on this machine about 22 s of CPU per test worker alone.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: install demo lint test browser up down bundle synth clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

install: $(SYNCED)

demo: $(SYNCED)
	$(VENV)/bin/python local/demo.py

# Lint and types (config in pyproject.toml); any finding fails, and `make test` runs it first.
lint: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint browser
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# The browser test (tests/e2e/test_browser.py) drives Debian's Chromium with Playwright (from the lock):
# Playwright's own browser download cannot be reached here, so Chromium comes from apt when missing.
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The same local stack as the demo, left running: the Airflow UI on http://127.0.0.1:$(PORT).
PORT ?= 8080
STACK_DIR := .local-stack
up: $(SYNCED)
	@mkdir -p $(STACK_DIR); rm -f $(STACK_DIR)/stack.json
	@if [ -f $(STACK_DIR)/pid ] && kill -0 $$(cat $(STACK_DIR)/pid) 2>/dev/null; then echo "already up (make down first)"; exit 1; fi
	@nohup $(VENV)/bin/python local/stack.py --port $(PORT) --state $(STACK_DIR)/stack.json > $(STACK_DIR)/stack.log 2>&1 & echo $$! > $(STACK_DIR)/pid
	@for i in $$(seq 1 450); do [ -f $(STACK_DIR)/stack.json ] && break; kill -0 $$(cat $(STACK_DIR)/pid) 2>/dev/null || { tail -30 $(STACK_DIR)/stack.log; exit 1; }; sleep 1; done
	@cat $(STACK_DIR)/stack.json; echo "Airflow UI: http://127.0.0.1:$(PORT)  (users and passwords above; make down stops it)"
	@echo "AIOps view (approvals, audit trail, exemptions): $$($(VENV)/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["aiops_view"])' $(STACK_DIR)/stack.json)"

down:
	@if [ -f $(STACK_DIR)/pid ]; then kill -TERM $$(cat $(STACK_DIR)/pid) 2>/dev/null; \
	  for i in $$(seq 1 60); do kill -0 $$(cat $(STACK_DIR)/pid) 2>/dev/null || break; sleep 1; done; rm -f $(STACK_DIR)/pid; fi
	@echo "local stack stopped"

# The MWAA deployment bundle (dags/, plugins.zip, requirements.txt, startup.sh) in build/bundle.
bundle: $(SYNCED)
	PYTHONPATH=infra $(VENV)/bin/python -m aiops_infra.bundle build/bundle

# The CloudFormation templates of every stack in infra/cdk.out (offline; CDK context from infra/cdk.json).
synth: $(SYNCED)
	cd infra && JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 ../$(VENV)/bin/python app.py

clean:
	rm -rf $(VENV) $(TOOLS) .airflow .pytest_cache build infra/cdk.out
