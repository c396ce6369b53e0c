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

.PHONY: setup test test-quick demo lint format clean mediapipe-env

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(STAMP)

test: $(STAMP)
	WANDB_MODE=disabled $(BIN)/pytest -q

test-quick: $(STAMP)
	WANDB_MODE=disabled $(BIN)/pytest -q -m "not slow"

demo: $(STAMP)
	$(BIN)/python -m hold.demo $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The `mediapipe` hand backend runs in its own environment (mediapipe 0.10.21 needs numpy<2, protobuf<5);
# the main process drives it through preprocess/mediapipe/worker.py and never imports mediapipe.
MP_VENV := .venv-mediapipe
MP_STAMP := $(MP_VENV)/.installed
MP_REQUIREMENTS := preprocess/mediapipe/requirements.txt

$(MP_STAMP): $(MP_REQUIREMENTS)
	test -x $(MP_VENV)/bin/python || $(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/pip install -q --disable-pip-version-check -r $(MP_REQUIREMENTS)
	$(MP_VENV)/bin/python -c "import mediapipe, numpy; print('mediapipe', mediapipe.__version__, 'numpy', numpy.__version__)"
	touch $@

mediapipe-env: $(MP_STAMP)

clean:
	rm -rf $(VENV) $(MP_VENV) $(DEMO_DIR)
