# The README's commands. Each one makes its own virtual environment (.venv) and installs what it needs.
#   make lab        the learner's start: installs the course and its data, opens JupyterLab on lesson 1
#                   (QUICK=1 make lab: quick mode, every notebook on tiny sizes; KERAS_BACKEND=jax make lab: JAX, installed too)
#   make demo       the main job: fine-tune the shipped Fashion-MNIST GAN on 100 digits vs scratch; runs/demo/report.html
#                   (run again, it moves the earlier runs/demo aside to runs/demo.old-<date>-<time>: nothing is deleted)
#   make pretrain   pretrain a small GAN on Fashion-MNIST (CPU-friendly size); outputs under runs/pretrain
#   make test       run every notebook in test mode (nbdev_test), then the pytest suite without its `slow` tests (CI runs this)
#   make test-all   the same with the `slow` tests: each method on 2 devices, the JAX copies of the CLI and adaptation
#                   resumes
#   make screenshots  redraw nbs/images/widget_*.png, the widgets of lesson 5 in JupyterLab in headless Chromium
#                   (tests/test_browser.py with GAN_TL_SCREENSHOTS=nbs/images; minutes on a CPU; not part of make test)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# A CPU build of PyTorch for the cross-backend tests; override for a CUDA machine.
TORCH  ?= torch==2.13.0

.PHONY: lab demo pretrain test test-all test-nbs test-py test-py-all export readme clean-nbs data screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: setup.py settings.ini | $(BIN)/python
	$(BIN)/pip install -q -e ".[tensorflow]"
	$(BIN)/pip install -q --no-deps "animal-mnist==0.4"    # its data files only: its own loader needs TensorFlow (chapter 1)
	touch $@

$(VENV)/.installed-lab: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[lab]" $(if $(filter jax,$(KERAS_BACKEND)),"jax") $(if $(filter torch,$(KERAS_BACKEND)),"$(TORCH)")
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[all]" "$(TORCH)"
	touch $@

data:
	@bash .ci/install-data.sh

lab: $(VENV)/.installed-lab data
	cd nbs && $(if $(QUICK),GAN_TL_TEST=1) $(abspath $(BIN))/jupyter lab --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root) lessons/01_quickstart.ipynb    # the whole course in the file browser, lesson 1 open; --allow-root: JupyterLab asks for it as root

demo: $(VENV)/.installed data
	$(BIN)/gan-tl demo --out runs/demo --overwrite

pretrain: $(VENV)/.installed data
	$(BIN)/gan-tl pretrain --images fashion_mnist --preset dcgan28 --width 32 --steps 2000 --batch-size 64 --out runs/pretrain --overwrite

export: $(VENV)/.installed-dev
	$(BIN)/nbdev_export

test-nbs: $(VENV)/.installed-dev data
	@echo "test-nbs: started $$(date +%T)"
	$(BIN)/nbdev_test --n_workers 2 --timing
	@echo "test-nbs: finished $$(date +%T)"

test-py: $(VENV)/.installed-dev data
	@echo "test-py: started $$(date +%T)"
	$(BIN)/python -m pytest -q --durations=25 -m "not slow" tests
	@echo "test-py: finished $$(date +%T)"

test-py-all: $(VENV)/.installed-dev data
	$(BIN)/python -m pytest -q --durations=25 tests

test: test-nbs test-py

test-all: test-nbs test-py-all

screenshots: $(VENV)/.installed-dev data
	GAN_TL_SCREENSHOTS=nbs/images $(BIN)/python -m pytest -q tests/test_browser.py -k test_widget_screenshots

readme: $(VENV)/.installed-dev
	TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 $(BIN)/jupyter nbconvert --log-level WARN --execute --to markdown nbs/index.ipynb --output-dir . --output README \
	    --TemplateExporter.exclude_input=True --RegexRemovePreprocessor.patterns='["^\#\| hide"]'    # tables in; code, checks and TF log lines out
	sed -i -E 's#\]\((images/|lessons/|library/)#](nbs/\1#g' README.md    # links from the repository root

clean-nbs: $(VENV)/.installed-dev
	$(BIN)/nbdev_clean
