# Everything installs itself into a local virtual environment (.venv) on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := resources/demo
# The TensorFlow Object Detection API (not on PyPI) for the tests that build models from pipeline.config:
# installed from ../shared/vendor/odapi when that folder is beside the clone; its tests skip without it.
ODAPI := ../shared/vendor/odapi
ODAPI_STAMP := $(VENV)/.odapi-installed
# The Model Garden for the tests that build models from params.yaml: the `garden` extra, then tf-models-official
# without its own pins (they ask for the TensorFlow it was released with); about a minute, once.
GARDEN_STAMP := $(VENV)/.garden-installed
TEST_DEPS := $(STAMP) $(if $(wildcard $(ODAPI)/install.sh),$(ODAPI_STAMP)) $(GARDEN_STAMP)

.PHONY: run run-cli test bench demo screenshots package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,beam]'
	touch $(STAMP)

# The OD API's installer must keep the protobuf that Beam holds below 7 (it compiles its protos for it).
$(ODAPI_STAMP): $(STAMP) $(ODAPI)/install.sh
	$(PY) -m pip list --format=freeze | grep -i '^protobuf==' > $(VENV)/constraints.txt
	PIP_CONSTRAINT=$(abspath $(VENV))/constraints.txt $(ODAPI)/install.sh $(abspath $(VENV))
	touch $(ODAPI_STAMP)

$(GARDEN_STAMP): $(STAMP)
	$(PY) -m pip list --format=freeze | grep -i '^protobuf==' > $(VENV)/constraints.txt
	PIP_CONSTRAINT=$(abspath $(VENV))/constraints.txt $(PY) -m pip install --quiet -e '.[garden]'
	$(PY) -m pip install --quiet --no-deps 'tf-models-official==2.20.0'
	touch $(GARDEN_STAMP)

## run: open the window on the bundled demo model and its test images
run: $(STAMP)
	$(VENV)/bin/detscope-gui $(DEMO) $(DEMO)/test/images

## run-cli: the same demo from the command line (no display needed)
run-cli: $(STAMP)
	$(VENV)/bin/detscope inspect $(DEMO) --depth 3
	$(VENV)/bin/detscope detect $(DEMO) $(DEMO)/test/images --threshold 0.5

## test: the whole test suite, headless, plus the architecture contract (core never imports Qt)
test: $(TEST_DEPS)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q
	$(VENV)/bin/lint-imports

## package: the one-folder app in dist/detscope/ (PyInstaller, packaging/detscope.spec); test it with
## bash packaging/smoke.sh. About 1.6 GB; 2 to 4 minutes here: see packaging/README.md
PACKAGE_STAMP := $(VENV)/.package-installed
$(PACKAGE_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[package]'
	touch $(PACKAGE_STAMP)

package: $(PACKAGE_STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m PyInstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/detscope.spec

bench: $(STAMP)
	$(PY) bench/run_all.py

demo: $(STAMP)
	$(PY) $(DEMO)/make_demo.py

## screenshots: the README's screenshots, rendered under Xvfb (needs xvfb-run and imagemagick)
screenshots: $(STAMP)
	$(PY) packaging/screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
