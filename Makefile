# The two commands the README opens with:
#   make demo   local services up, a demo config, a monitor that goes down, notifications you can see
#   make test   the static checks (make check), then the whole test suite against real PostgreSQL,
#               Redis and Kafka, then the Kafka tests (marker `kafka`) again on the oldest supported broker
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# KAFKA_VERSION (the default broker) and KAFKA_OLDEST_VERSION: chosen there only.
include scripts/kafka/versions
# The oldest broker runs beside the default one, on ports 10 above it.
KAFKA_PORT := $(or $(UPTIMED_KAFKA_PORT),29092)
KAFKA_CONTROLLER_PORT := $(or $(UPTIMED_KAFKA_CONTROLLER_PORT),29093)
OLDEST := UPTIMED_KAFKA_VERSION=$(KAFKA_OLDEST_VERSION) \
	UPTIMED_KAFKA_PORT=$(shell echo $$(($(KAFKA_PORT) + 10))) \
	UPTIMED_KAFKA_CONTROLLER_PORT=$(shell echo $$(($(KAFKA_CONTROLLER_PORT) + 10)))

# What the linter and the formatter read.
LINTED := uptimed tests bench plugins scripts/demo.py

.PHONY: test check demo browser services-up services-down services-status clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

services-up:
	scripts/services up

services-down:
	scripts/services down

services-status:
	scripts/services status

# Debian's Chromium, which the browser tests (tests/web) drive through Playwright.
browser:
	scripts/chromium

# Lint, format and strict typing: a finding fails the build like a failing test.
check: $(VENV)/.installed
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy

test: check services-up browser
	$(PY) -m pytest
	$(OLDEST) $(PY) -m pytest -m kafka -p no:cacheprovider; status=$$?; \
	$(OLDEST) scripts/services down kafka; exit $$status

demo: $(VENV)/.installed services-up
	$(PY) scripts/demo.py $(DEMO_ARGS)

clean: services-down
	rm -rf .data $(VENV)
