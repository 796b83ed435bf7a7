# tritonship: every target wraps the CLI in the project's virtual environment.
PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
TS        := $(BIN)/tritonship
REPO      ?= model_repository
WEIGHTS   ?= official
DEVICE    ?= auto
IMAGE_TAG ?= 24.09-py3
PORT      ?= 8080
RUNTIME_PORT ?= 8081
IMAGE     ?= .tritonship/samples/chelsea.jpg
PROFILE   ?= gpu
PYTEST_ARGS ?=

.PHONY: help setup artifacts validate serve stop up down demo invoke test lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed  ## create .venv and install tritonship with its dev extras

artifacts: setup  ## build the DALI pipeline, Inception graph, labels (WEIGHTS=official|random|auto)
	$(TS) build --repo $(REPO) --weights $(WEIGHTS) --device $(DEVICE)

$(REPO)/build-manifest.json: | setup
	$(TS) build --repo $(REPO) --weights auto --device $(DEVICE)

validate: setup  ## check the repository (IMAGE_TAG=25.04-py3 checks another image)
	$(TS) validate --repo $(REPO) --image $(IMAGE_TAG)

serve: setup $(REPO)/build-manifest.json  ## serve natively on PORT like SageMaker (Ctrl-C stops)
	$(TS) serve --repo $(REPO) --port $(PORT) --runtime-port $(RUNTIME_PORT)

stop: setup  ## stop a native server started with serve --detach
	$(TS) stop --engine native

up: setup $(REPO)/build-manifest.json  ## Docker Compose with the SageMaker image (PROFILE=gpu|cpu)
	$(TS) serve --engine docker --profile $(PROFILE) --repo $(REPO) --port $(PORT) --detach

down: setup  ## stop the Docker Compose service
	$(TS) stop --engine docker

demo: setup  ## build, serve natively, classify a sample photo, stop (the README's first command)
	$(TS) build --repo $(REPO) --weights auto --device $(DEVICE)
	$(BIN)/python -m tritonship.samples .tritonship/samples
	$(TS) serve --repo $(REPO) --port $(PORT) --runtime-port $(RUNTIME_PORT) --detach
	$(TS) invoke .tritonship/samples/chelsea.jpg --url http://127.0.0.1:$(PORT) --repo $(REPO); \
	  status=$$?; $(TS) stop; exit $$status

invoke: setup  ## classify IMAGE=path.jpg through the local endpoint on PORT
	$(TS) invoke $(IMAGE) --url http://127.0.0.1:$(PORT) --repo $(REPO)

test: setup  ## run the test suite (offline; builds its own random-weight repository)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup  ## ruff
	$(BIN)/ruff check tools tests dali container

clean:  ## remove built artifacts and run state (keeps .venv)
	rm -f $(REPO)/*/1/model.graphdef $(REPO)/*/1/model.dali $(REPO)/dali/1/dali.py
	rm -f $(REPO)/inception_graphdef/inception_labels.txt $(REPO)/build-manifest.json
	rm -rf .tritonship
