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
# Run state (servers, samples, bench reports): TRITONSHIP_RUN_DIR when set, as for the CLI.
RUN_DIR   := $(or $(TRITONSHIP_RUN_DIR),.tritonship)
IMAGE     ?= $(RUN_DIR)/samples/chelsea.jpg
PROFILE   ?= gpu
PYTEST_ARGS ?=

.PHONY: help setup doctor artifacts validate serve stop up down demo invoke test test-docs test-fast lint audit clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed  ## create .venv and install tritonship with its dev extras

doctor: setup  ## what is installed and reachable here, each with its fix when missing
	$(TS) doctor

artifacts: setup  ## build the DALI pipeline, Inception graph, labels (WEIGHTS=official|random|auto)
	$(TS) build --repo $(REPO) --weights $(WEIGHTS) --device $(DEVICE)

# make artifacts-gpu: the GPU build (docs/gpu.md) of REPO into GPU_REPO for INSTANCE_TYPE;
# SKIP_CUDA_CHECK=1 writes the GPU configs from a machine without CUDA (and says so).
GPU_REPO ?= $(REPO)_gpu
.PHONY: artifacts-gpu

artifacts-gpu: setup $(REPO)/build-manifest.json  ## GPU configs for INSTANCE_TYPE into GPU_REPO (SKIP_CUDA_CHECK=1 off-GPU)
	$(TS) build --device gpu --repo $(GPU_REPO) --source $(REPO) --weights auto \
	  --instance-type $(INSTANCE_TYPE) $(if $(SKIP_CUDA_CHECK),--skip-cuda-check)

$(REPO)/build-manifest.json: | setup
	$(TS) build --repo $(REPO) --weights auto --device $(DEVICE)

validate: setup  ## check the repository (IMAGE_TAG=25.04-py3 checks another image)
	$(TS) validate --repo $(REPO) --image-tag $(IMAGE_TAG)

serve: setup $(REPO)/build-manifest.json  ## serve natively on PORT like SageMaker (Ctrl-C stops)
	$(TS) serve --repo $(REPO) --port $(PORT) --runtime-port $(RUNTIME_PORT)

stop: setup  ## stop a native server started with serve --detach
	$(TS) stop --engine native

# make up: IMAGE= on the command line picks the image (else SageMaker's); COMPOSE_FILES=
# adds Compose files (TRITONSHIP_COMPOSE_FILES), e.g. with the stand-in image:
#   make sim-image && make up PROFILE=cpu IMAGE=$(SIM_IMAGE) \
#     COMPOSE_FILES=compose.local.yml:compose.sim.yml
SIM_IMAGE     ?= tritonship/sagemaker-tritonserver-sim:24.09-py3
COMPOSE_FILES ?= $(TRITONSHIP_COMPOSE_FILES)
UP_IMAGE      := $(if $(filter command line,$(origin IMAGE)),--image $(IMAGE))
.PHONY: sim-image

up: setup $(REPO)/build-manifest.json  ## Docker Compose with the SageMaker image (PROFILE=gpu|cpu, IMAGE=, COMPOSE_FILES=)
	TRITONSHIP_COMPOSE_FILES='$(COMPOSE_FILES)' $(TS) serve --engine docker --profile $(PROFILE) \
	  $(UP_IMAGE) --repo $(REPO) --port $(PORT) --runtime-port $(RUNTIME_PORT) --detach

down: setup  ## stop the Docker Compose service (no container, no network left)
	TRITONSHIP_COMPOSE_FILES='$(COMPOSE_FILES)' $(TS) stop --engine docker

sim-image:  ## build the local stand-in of the SageMaker image (not NVIDIA's: CPU only; root, Docker)
	SIM_IMAGE='$(SIM_IMAGE)' container/sim/build.sh

demo: setup  ## build, serve natively, classify a sample photo, stop (the README's first command)
	$(TS) build --repo $(REPO) --weights auto --device $(DEVICE)
	$(BIN)/python -m tritonship.samples $(RUN_DIR)/samples
	$(TS) serve --repo $(REPO) --port $(PORT) --runtime-port $(RUNTIME_PORT) --detach
	$(TS) invoke $(RUN_DIR)/samples/chelsea.jpg --url http://127.0.0.1:$(PORT) --repo $(REPO); \
	  status=$$?; $(TS) stop; exit $$status

invoke: setup  ## classify IMAGE=path.jpg through the local endpoint on PORT
	$(TS) invoke $(IMAGE) --url http://127.0.0.1:$(PORT) --repo $(REPO)

# make bench: its own run folder inside RUN_DIR (a detached server of yours is left alone) and
# a free port. The report stays in BENCH_OUT (run state, not the checkout); RESULTS=docs/results
# also keeps a stamped copy there, on purpose.
CONCURRENCY ?= 1,2,4,8,16
DURATION    ?= 10
FORMAT      ?= both
BENCH_OUT   ?= $(RUN_DIR)/bench
BENCH_RUN   := $(RUN_DIR)/bench-run
RESULTS     ?=
.PHONY: bench

bench: setup $(REPO)/build-manifest.json  ## serve natively on a free port, bench it (CONCURRENCY, DURATION, FORMAT, RESULTS=), stop it
	@export TRITONSHIP_RUN_DIR=$(BENCH_RUN); \
	trap '$(TS) stop >/dev/null' EXIT; trap 'exit 130' INT TERM; \
	port=$$($(BIN)/python -c 'from tritonship.local.engine import free_port; print(free_port())'); \
	$(TS) serve --repo $(REPO) --port $$port --runtime-port 0 --detach && \
	$(TS) bench --url http://127.0.0.1:$$port --repo $(REPO) --concurrency $(CONCURRENCY) \
	  --duration $(DURATION) --format $(FORMAT) --out $(BENCH_OUT) $(if $(RESULTS),--results $(RESULTS))

# make bench-formats: the ONNX build beside the TensorFlow repository, both served natively
# in turn (alternating rounds) and compared; ROUNDS, CONCURRENCY, DURATION apply.
ONNX_REPO ?= $(REPO)_onnx
ROUNDS    ?= 2
.PHONY: bench-formats

bench-formats: setup $(REPO)/build-manifest.json  ## TensorFlow vs its ONNX build, served natively, alternating
	$(TS) build --format onnx --repo $(ONNX_REPO) --source $(REPO) --weights auto --device $(DEVICE)
	$(TS) bench --compare $(REPO),$(ONNX_REPO) --rounds $(ROUNDS) --concurrency $(CONCURRENCY) \
	  --duration $(DURATION) --out $(BENCH_OUT) $(if $(RESULTS),--results $(RESULTS))

# make package promote teardown: ship to a SageMaker endpoint. AWS_REGION, AWS_PROFILE and
# AWS_ENDPOINT_URL apply (a local moto server: see docs/deploying.md).
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

test-docs: setup  ## every runnable block of README.md and docs/, page by page, from a fresh clone
	$(BIN)/python -m pytest tests/unit/test_docs_marked.py tests/integration/test_docs.py $(PYTEST_ARGS)

test-fast: setup  ## unit tests only: no Keras export, no server (under a minute on 2 cores)
	$(BIN)/python -m pytest -n auto --dist loadfile \
	  -m "not integration and not server and not slow and not soak" \
	  $(PYTEST_ARGS) tests/unit

# make test-endpoint: after promote, the acceptance tests through boto3 InvokeEndpoint
# against TRITONSHIP_ENDPOINT (AWS_REGION and AWS_PROFILE apply). TRITONSHIP_REPO=<the
# promoted repository> adds the in-process comparison and, for official weights, the labels.
# Tests that need the container port skip, each with its reason.
LOCAL_ENDPOINT_NAME := tritonship-acceptance
export TRITONSHIP_ENDPOINT TRITONSHIP_REPO
.PHONY: test-endpoint test-endpoint-local

test-endpoint: setup  ## the integration suite through InvokeEndpoint (TRITONSHIP_ENDPOINT=NAME)
	@test -n "$(TRITONSHIP_ENDPOINT)" || \
	  { echo "make test-endpoint: set TRITONSHIP_ENDPOINT=<endpoint name>" >&2; exit 2; }
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-endpoint-local: setup $(REPO)/build-manifest.json  ## test-endpoint against the local runtime (serve, run, stop)
	@export TRITONSHIP_RUN_DIR=$(RUN_DIR)/test-endpoint-run; \
	trap '$(TS) stop >/dev/null' EXIT; trap 'exit 130' INT TERM; \
	set -- $$($(BIN)/python -c 'from tritonship.local.engine import free_port as f; print(f(), f())'); \
	$(TS) serve --repo $(REPO) --port $$1 --runtime-port $$2 --endpoint-name $(LOCAL_ENDPOINT_NAME) \
	  --detach && \
	TRITONSHIP_ENDPOINT=$(LOCAL_ENDPOINT_NAME) TRITONSHIP_REPO=$(REPO) AWS_REGION=us-east-1 \
	  AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:$$2 \
	  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	  $(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

audit: setup  ## dependency audit (pip-audit; accepted findings in .ci/audit-ignore.txt)
	$(BIN)/python .ci/audit.py

lint: setup  ## ruff check, ruff format --check, the type checker (mypy) and the flow's import rule
	$(BIN)/ruff check tools tests dali container models
	$(BIN)/ruff format --check tools tests dali container models
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:  ## remove built artifacts and run state (keeps .venv)
	rm -f $(REPO)/*/1/model.graphdef $(REPO)/*/1/model.dali $(REPO)/dali/1/dali.py
	rm -f $(REPO)/inception_graphdef/inception_labels.txt $(REPO)/build-manifest.json
	rm -rf .tritonship
