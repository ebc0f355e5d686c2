# Kafkaweb: `make run` starts the whole cluster and the UI; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench setup clean

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $(STAMP)

setup: $(STAMP) system-packages

.PHONY: system-packages
system-packages:
	@scripts=(); \
	command -v redis-server >/dev/null || [ -n "$$REDIS_URL" ] || scripts+=(redis-server); \
	if [ "$(MAKECMDGOALS)" = "test" ]; then \
	  command -v kcat >/dev/null || scripts+=(kcat); \
	  command -v chromium >/dev/null || scripts+=(chromium); \
	  command -v npm >/dev/null || scripts+=(nodejs npm); \
	  command -v go >/dev/null || scripts+=(golang-go); \
	  test -d /usr/share/gocode/src/github.com/Shopify/sarama || scripts+=(golang-github-shopify-sarama-dev); \
	fi; \
	if [ $${#scripts[@]} -gt 0 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages: $${scripts[*]}"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $${scripts[@]} >/dev/null; \
	  else \
	    echo "Missing: $${scripts[*]} (install them with your package manager)"; exit 1; \
	  fi; \
	fi

run: setup
	$(BIN)/python manage.py cluster

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

KAFKAJS := tests/compat/kafkajs
$(KAFKAJS)/node_modules/.installed: $(KAFKAJS)/package.json $(KAFKAJS)/package-lock.json
	cd $(KAFKAJS) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: setup lint $(KAFKAJS)/node_modules/.installed
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf var test-artifacts .pytest_cache .mypy_cache .ruff_cache
