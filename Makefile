# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# Rasa Open Source 3.6 runs on Python <= 3.10 only, so it gets a virtualenv of its own
# (about 2.7 GB with TensorFlow); tier0 calls its `rasa` command and never imports it.
RASA_VERSION := 3.6.21
RASA_PYTHON ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)/versions/3.10.13/bin/python3.10
RASA_VENV := .venv-rasa
RASA_STAMP := $(RASA_VENV)/.installed-$(RASA_VERSION)

.PHONY: install run test bench eval lint clean rasa bench-nlu bench-nlu-rasa bench-slack

install: $(STAMP)

# torch goes in first, pinned to the CPU build served from this machine's disk,
# so sentence-transformers does not pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tier0 run

# The tests include a real Rasa server (required under CI), so Rasa's virtualenv is
# prepared too: the README's one test command does all the set-up.
test: $(STAMP) $(RASA_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/ask_latency.py
	$(BIN)/python bench/answer_threshold.py
	$(BIN)/python bench/decisions.py
	$(BIN)/python bench/gap_clusters.py
	$(BIN)/python bench/outbox_delivery.py
	$(BIN)/python bench/kb_scale.py
	$(BIN)/python bench/tickets_bench.py

# The public intent benchmarks (CLINC150, BANKING77, HWU64) from ../shared/data;
# writes bench/results/nlu.json.
bench-nlu: $(STAMP)
	$(BIN)/python bench/nlu_bench.py

# Answer quality on the dev question sets of the sample KB and ../shared/data/it-kb.
eval: $(STAMP)
	$(BIN)/python bench/eval_kb.py

# Signed events at rising rates against `tier0 serve --http` and a mock Slack Web API.
bench-slack: $(STAMP)
	$(BIN)/python bench/slack_load.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .tier0


rasa: $(RASA_STAMP)

$(RASA_STAMP):
	@test -x "$(RASA_PYTHON)" || { echo "error: no Python 3.10 at $(RASA_PYTHON): Rasa 3.6 needs Python <= 3.10 (pyenv install 3.10.13, or set RASA_PYTHON)" >&2; exit 2; }
	test -x $(RASA_VENV)/bin/python || $(RASA_PYTHON) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install --quiet --upgrade pip
	$(RASA_VENV)/bin/pip install --quiet rasa==$(RASA_VERSION)
	touch $(RASA_STAMP)

# Rasa's DIET on the same benchmarks, merged into bench/results/nlu.json under "rasa";
# skipped (with a note) when `make rasa` has not been run.
bench-nlu: bench-nlu-rasa

# DIET's own default is 100 epochs: about 12 CPU-hours for the three data sets on 2 cores
# (see the README). 5 epochs takes about 20 CPU-minutes a data set; `make bench-nlu-rasa
# RASA_EPOCHS=100` for the full training.
RASA_EPOCHS ?= 5
bench-nlu-rasa: $(STAMP)
	$(BIN)/python bench/nlu_rasa.py --epochs $(RASA_EPOCHS)
