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

.PHONY: help setup artifacts validate serve stop up down demo invoke test test-fast lint audit clean

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

# make bench: its own run folder (a detached server of yours is left alone) and a free port.
CONCURRENCY ?= 1,2,4,8,16
DURATION    ?= 10
FORMAT      ?= both
BENCH_OUT   ?= .tritonship/bench
BENCH_RUN   := .tritonship/bench-run
.PHONY: bench

bench: setup $(REPO)/build-manifest.json  ## serve natively on a free port, bench it (CONCURRENCY, DURATION, FORMAT), stop it
	@export TRITONSHIP_RUN_DIR=$(BENCH_RUN); \
	trap '$(TS) stop >/dev/null' EXIT; trap 'exit 130' INT TERM; \
	port=$$($(BIN)/python -c 'from tritonship.local.engine import free_port; print(free_port())'); \
	$(TS) serve --repo $(REPO) --port $$port --runtime-port 0 --detach && \
	$(TS) bench --url http://127.0.0.1:$$port --repo $(REPO) --concurrency $(CONCURRENCY) \
	  --duration $(DURATION) --format $(FORMAT) --out $(BENCH_OUT)

# make package promote teardown: ship to a SageMaker endpoint. AWS_REGION, AWS_PROFILE and
# AWS_ENDPOINT_URL apply (a local moto server: see the README).
ENDPOINT      ?= tritonship-demo
BUCKET        ?=
ROLE          ?=
INSTANCE_TYPE ?= ml.g4dn.xlarge
ARCHIVE       ?= dist/model.tar.gz
PACKAGE_ARGS  ?=
PROMOTE_ARGS  ?=
TEARDOWN_ARGS ?=
.PHONY: package promote teardown

package: setup $(REPO)/build-manifest.json  ## validate, write ARCHIVE (PACKAGE_ARGS=--allow-random-weights)
	$(TS) package --repo $(REPO) --out $(ARCHIVE) --image-tag $(IMAGE_TAG) $(PACKAGE_ARGS)

promote: setup  ## deploy ARCHIVE to ENDPOINT (BUCKET=, ROLE=; PROMOTE_ARGS=--dry-run, --autoscale 1:4)
	@test -n "$(BUCKET)" -a -n "$(ROLE)" || \
	  { echo "make promote: set BUCKET=<bucket> ROLE=<execution role ARN>" >&2; exit 2; }
	$(TS) promote --endpoint $(ENDPOINT) --bucket $(BUCKET) --role $(ROLE) --archive $(ARCHIVE) \
	  --image-tag $(IMAGE_TAG) --instance-type $(INSTANCE_TYPE) $(PROMOTE_ARGS)

teardown: setup  ## delete ENDPOINT and what promote made (TEARDOWN_ARGS=--delete-artifacts)
	$(TS) teardown --endpoint $(ENDPOINT) $(TEARDOWN_ARGS)

test: setup  ## every tier, as CI runs it (offline; builds its own random-weight repository)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup  ## unit tests only: no Keras export, no server (under a minute on 2 cores)
	$(BIN)/python -m pytest -m "not integration and not slow and not soak" $(PYTEST_ARGS) tests/unit

audit: setup  ## dependency audit (pip-audit; accepted findings in .ci/audit-ignore.txt)
	$(BIN)/python .ci/audit.py

lint: setup  ## ruff check, ruff format --check, and the flow's import rule (import-linter)
	$(BIN)/ruff check tools tests dali container models
	$(BIN)/ruff format --check tools tests dali container models
	$(BIN)/lint-imports

clean:  ## remove built artifacts and run state (keeps .venv)
	rm -f $(REPO)/*/1/model.graphdef $(REPO)/*/1/model.dali $(REPO)/dali/1/dali.py
	rm -f $(REPO)/inception_graphdef/inception_labels.txt $(REPO)/build-manifest.json
	rm -rf .tritonship
