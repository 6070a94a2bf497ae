# Two entry points: `make repro` (install + the default study) and `make test` (install + tests).
# Each creates .venv with plain pip (it finds local torch wheels and constraints where pip is configured).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: install install-test repro test check-current lint mlflow-ui mlflow-server clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/python -m pip install -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'

repro: install
	$(BIN)/dvc repro

# Lint, then that every committed result is current at HEAD, then the suite.
test: install-test lint check-current
	$(BIN)/python -m pytest

# Committed results and dvc.lock are current at HEAD (docs/determinism.md#keeping-committed-results-current): a
# change either re-runs what it affects or is accepted with evidence (lock.py / study.py --accept).
check-current: install-test
	$(BIN)/python pipelines/lock.py --check
	$(BIN)/python pipelines/study.py studies/*/study.yaml --check

lint: install-test
	$(BIN)/python -m ruff check src pipelines tests
	$(BIN)/lint-imports  # the layers and import rules: [tool.importlinter] in pyproject.toml

mlflow-ui:
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///mlflow.db

# A shared tracking server on loopback (docs/scale_out_cluster.md): export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
mlflow-server:
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --host 127.0.0.1 --port 5000 --workers 1 \
		--backend-store-uri sqlite:///$(CURDIR)/mlflow-server.db --artifacts-destination $(CURDIR)/mlartifacts

clean:
	rm -rf outputs multirun .pytest_cache
