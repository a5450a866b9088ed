# The two commands of the README: `make demo` runs a real sync, `make test` runs the whole suite.
# Both create .venv and install the pinned dependencies (constraints.txt) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The bench's extra (dlt, for the reference pipeline) has a stamp of its own: demo and test never install it.
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test sandbox airflow lint bench clean debian-packages dist

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The wheel a team installs into its own Airflow (pip install dist/socialsync-*.whl; see the README).
dist: $(STAMP)
	rm -rf dist
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps -w dist .

# Debian packages the suite starts itself: redis-server (the Celery e2e's broker) and chromium (the UI
# test's browser). Installed with apt-get only when missing, as root or through sudo, never interactively.
# (Where systemd runs, Debian also starts its own Redis service on :6379; the tests never use it.)
DEBIAN_PACKAGES := redis-server chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

debian-packages:
	@missing=""; for pkg in $(DEBIAN_PACKAGES); do \
		command -v $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(APT_GET) update -q && $(APT_GET) install -y -q --no-install-recommends $$missing; \
	fi

demo: $(STAMP)
	$(PY) -m socialsync.local.demo

test: $(STAMP) debian-packages
	$(PY) -m pytest

sandbox: $(STAMP)
	$(PY) -m socialsync.sandbox

airflow: $(STAMP)
	$(PY) -m socialsync.local.airflow

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check dags plugins include tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .demo .pytest_cache dist
