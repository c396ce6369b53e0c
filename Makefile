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

.PHONY: setup sam2 test test-quick demo lint format clean mediapipe-env

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

setup: $(STAMP)

# SAM 2 (masks.backend=sam2) without its dependency on torchvision, whose wheels would replace the
# pinned CPU torch: the video predictor never imports torchvision. sam2 is a source package whose
# setup.py imports torch, hence --no-build-isolation; SAM2_BUILD_CUDA=0 skips its optional extension.
SAM2_STAMP := $(VENV)/.sam2-installed
SAM2_PACKAGES := sam2==1.1.0 hydra-core==1.3.8 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 iopath==0.1.10 portalocker==3.2.0

$(SAM2_STAMP): $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check setuptools wheel
	SAM2_BUILD_CUDA=0 $(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation $(SAM2_PACKAGES)
	touch $@

sam2: $(SAM2_STAMP)

# The tests include the sam2 backend on a random-weight model, so they install it.
test: $(STAMP) $(SAM2_STAMP)
	WANDB_MODE=disabled $(BIN)/pytest -q

test-quick: $(STAMP) $(SAM2_STAMP)
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
