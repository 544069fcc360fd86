# The two commands a newcomer needs:  `make course`  and  `make test`.
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := build/course
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: course test lab venv browser clean help

help:
	@echo "make course  - run every notebook in order on the offline OpenMoji data; results in $(BUILD)/"
	@echo "make test    - run the whole test suite (unit tests, notebooks under nbval, browser test)"
	@echo "make lab     - open the course in JupyterLab"

venv: $(VENV)/.installed

# Re-install when the dependency list changes. pip's own constraints on this machine keep torch
# at the build that lies on local disk.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The canvas test drives JupyterLab in Debian's Chromium. Install it when we can (root + apt);
# elsewhere the test skips itself with the reason (and fails under CI, which must run it).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser test"; \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) || \
	  echo "could not install chromium; the browser test will say so"; \
	fi

# Fast mode (PIX2PIX_FAST=1) shrinks image sizes and step counts, never code paths.
# One torch thread per pytest worker: two workers on two cores, no oversubscription.
test: venv browser
	PIX2PIX_FAST=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile \
	  --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks

course: venv
	mkdir -p $(BUILD)
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  $(VENV)/bin/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
	    --output-dir $(BUILD) "$$nb" || exit 1; \
	  $(VENV)/bin/jupyter nbconvert --to html --output-dir $(BUILD) "$(BUILD)/$$(basename $$nb)" || exit 1; \
	done
	@echo "Executed notebooks and HTML pages are in $(BUILD)/"

lab: venv
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) notebooks/

clean:
	rm -rf build .pytest_cache
