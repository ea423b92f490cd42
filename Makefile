# Everything installs itself into a local virtual environment (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := resources/demo

.PHONY: run run-cli test bench demo screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: open the window on the bundled demo model and its test images
run: $(STAMP)
	$(VENV)/bin/detscope-gui $(DEMO) $(DEMO)/test/images

## run-cli: the same demo from the command line (no display needed)
run-cli: $(STAMP)
	$(VENV)/bin/detscope inspect $(DEMO) --depth 3
	$(VENV)/bin/detscope detect $(DEMO) $(DEMO)/test/images --threshold 0.5

## test: the whole test suite, headless, plus the architecture contract (core never imports Qt)
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) bench/run_all.py

demo: $(STAMP)
	$(PY) $(DEMO)/make_demo.py

## screenshots: the README's screenshots, rendered under Xvfb (needs xvfb-run and imagemagick)
screenshots: $(STAMP)
	$(PY) packaging/screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
