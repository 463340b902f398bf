# The two commands of the README. Each builds .venv on first use and reuses it after.
#   make lesson   run the lesson end to end
#   make test     run the whole test suite (offline)
#   make browser  install Debian's Chromium for the browser tests (make test runs it first)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lesson test browser clean-venv

# Reinstall only when what the environment is built from changes.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $(STAMP)

lesson: $(STAMP)
	$(PY) -m tasks.lesson

test: $(STAMP) browser
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# tests/test_explore.py drives Debian's Chromium through Playwright; nothing downloads a browser.
# Installed here when it is missing and we are root (as in CI); otherwise one line says what to run,
# and those tests are skipped, saying why (under CI=true they fail instead).
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	else \
		echo "make browser: no $(CHROMIUM), and this is not root on Debian/Ubuntu: install it with" \
		     "'sudo apt-get install -y chromium chromium-driver' (or the browser tests are skipped)"; \
	fi

clean-venv:
	rm -rf $(VENV)
