# The two commands of the README. Each builds .venv on first use and reuses it after.
#   make lesson   run the lesson end to end
#   make test     run the whole test suite (offline)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lesson test clean-venv

# Reinstall only when what the environment is built from changes.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $(STAMP)

lesson: $(STAMP)
	$(PY) -m tasks.lesson

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
