# Everything runs inside ./.venv, created on first use from $(PYTHON) (3.11+).
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv .venv demo test test-all clean

# The stamp is newer than pyproject.toml once the editable install succeeded, so the
# install reruns only when the dependencies change (or after a failed install).
# The examples extra (scikit-learn's digits, matplotlib) lets the tests run the examples.
$(STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev,examples]'
	touch $@

venv .venv: $(STAMP)

demo: $(STAMP)
	$(VPY) examples/linear_regression.py

# Fast default set: pyproject's addopts deselect the slow and cuda markers.
test: $(STAMP)
	$(VPY) -m pytest

# An explicit -m replaces the addopts one; an empty -m "" would select everything,
# cuda included, which fails without a GPU, so only cuda stays out (run: pytest -m cuda).
test-all: $(STAMP)
	$(VPY) -m pytest -m 'not cuda'

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .graphc-cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
