# The two commands a newcomer needs:  `make course`  and  `make test`.
# Both create the virtual environment .venv on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := build/course
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
comma := ,

COLAB_VENV := .venv-colab
COLAB_PY   := $(COLAB_VENV)/bin/python
# Colab's runtime as googlecolab/backend-info lists it (since 2026-08-19): Python 3.13, torch 2.11,
# the widget stack the course must work with, and the libraries it preinstalls that the course uses.
COLAB_PYTHON := 3.13
COLAB_STACK := torch==2.11.0 torchvision==0.26.0 \
  ipywidgets==7.7.1 traitlets==5.7.1 anywidget==0.9.21 notebook==6.5.7 ipykernel==6.17.1 ipython==7.34.0 \
  numpy==2.1.3 pillow==11.3.0 matplotlib==3.10.0 opencv-python-headless==5.0.0.93 scipy==1.16.3
# Python 3.13 from pyenv (whose shim refuses a version that is not selected), else from PATH.
COLAB_BASE ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/$(COLAB_PYTHON).*/bin/python$(COLAB_PYTHON)) \
  $(shell python$(COLAB_PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null))
# torch from PyPI is the CUDA build: its nvidia-* libraries come along (libtorch links them, so a CPU
# needs them too), 2.8 GB of wheels in all. They are downloaded once into COLAB_WHEELS (CI: keep
# that folder between runs) and installed from there; the venv is rebuilt only when pyproject.toml
# or this file changes.
COLAB_WHEELS ?= $(HOME)/.cache/pix2pix-course/colab-wheels

.PHONY: course test lab student venv colab-venv browser clean help

help:
	@echo "make course  - run every notebook in order on the offline OpenMoji data; results in $(BUILD)/"
	@echo "make test    - run the whole test suite (unit tests, notebooks under nbval, browser test)"
	@echo "make lab     - open the course in JupyterLab"
	@echo "make student - the student notebooks (solutions out) in build/student/"
	@echo "make colab-venv - the Colab-like environment the test command also uses (.venv-colab, Python 3.13)"

venv: $(VENV)/.installed

# Re-install when the dependency list changes. pip's own constraints on this machine keep torch
# at the build that lies on local disk.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[lab,test]'
	touch $@

# A second environment like Colab's (tests/test_colab_like.py): Colab's Python, torch and widget stack,
# and the project installed from its wheel, rebuilt from this checkout on every test run.
$(COLAB_VENV)/.installed: pyproject.toml Makefile
	@test -n "$(COLAB_BASE)" || { echo "Python $(COLAB_PYTHON) (Colab's) is not installed: pyenv install $(COLAB_PYTHON)"; exit 1; }
	$(COLAB_PY) -c 'import sys; assert sys.version_info[:2] == ($(subst .,$(comma) ,$(COLAB_PYTHON)))' 2>/dev/null \
	  || { rm -rf $(COLAB_VENV) && $(COLAB_BASE) -m venv $(COLAB_VENV); }
	$(COLAB_PY) -m pip download --quiet -d $(COLAB_WHEELS) $(COLAB_STACK) 'setuptools>=77' pytest nbval .
	$(COLAB_PY) -m pip install --quiet --no-index --find-links $(COLAB_WHEELS) $(COLAB_STACK) 'setuptools>=77' pytest nbval .
	touch $@

colab-venv: $(COLAB_VENV)/.installed
	rm -rf build/lib build/bdist.*  # a stale build/lib would put deleted modules into the wheel
	$(COLAB_PY) -m pip install --quiet --no-deps --force-reinstall --no-build-isolation .
	rm -rf build/lib build/bdist.*

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
test: venv browser colab-venv
	PIX2PIX_FAST=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PIX2PIX_COLAB_PYTHON=$(abspath $(COLAB_PY)) \
	  $(PY) -m pytest -n 2 --dist loadfile \
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

# The notebooks as a teacher hands them out: solutions replaced by `raise NotImplementedError()`.
student: venv
	$(PY) tools/make_student.py --out build/student

lab: venv
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) notebooks/

clean:
	rm -rf build .pytest_cache
