# The two commands of the README: `make demo` and `make test`. Both create .venv on first use;
# re-running is fast because the install only repeats when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is pinned so pip takes the CPU build that lies on local disk instead of a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
export ANNY_CACHE_DIR ?= $(HOME)/.cache/anny
DEMO_DIR ?= demo_out

.PHONY: setup test demo lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(STAMP)

test: $(STAMP)
	WANDB_MODE=disabled $(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/python -m hold.demo $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(DEMO_DIR)
