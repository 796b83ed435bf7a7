# tritonship: every target wraps the CLI in the project's virtual environment.
PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
TS       := $(BIN)/tritonship
REPO     ?= model_repository
WEIGHTS  ?= official
DEVICE   ?= auto
IMAGE_TAG ?= 24.09-py3
PYTEST_ARGS ?=

.PHONY: setup artifacts validate test lint clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed  ## create .venv and install tritonship with its dev extras

artifacts: setup  ## build the DALI pipeline, Inception graph and labels (WEIGHTS=official|random)
	$(TS) build --repo $(REPO) --weights $(WEIGHTS) --device $(DEVICE)

validate: setup  ## check the repository (add IMAGE_TAG=25.04-py3 to check another image)
	$(TS) validate --repo $(REPO) --image $(IMAGE_TAG)

test: setup  ## run the test suite (offline; builds its own random-weight repository)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup  ## ruff
	$(BIN)/ruff check tools tests dali container

clean:  ## remove built artifacts (keeps .venv)
	rm -f $(REPO)/*/1/model.graphdef $(REPO)/*/1/model.dali $(REPO)/dali/1/dali.py
	rm -f $(REPO)/inception_graphdef/inception_labels.txt $(REPO)/build-manifest.json
