# The two commands the README opens with:
#   make demo   local services up, a demo config, a monitor that goes down, notifications you can see
#   make test   the whole test suite against real PostgreSQL, Redis and Kafka
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test demo browser services-up services-down services-status clean

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

test: $(VENV)/.installed services-up browser
	$(PY) -m pytest

demo: $(VENV)/.installed services-up
	$(PY) scripts/demo.py $(DEMO_ARGS)

clean: services-down
	rm -rf .data $(VENV)
