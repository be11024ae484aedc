# Set-up and entry points. Each target creates .venv and installs the pinned dependencies if missing.
# torch==2.14.1 / torchvision==0.29.1 are pinned in pyproject.toml (they install from local disk).
PYTHON ?= python3
VENV   := .venv
CORES  ?= $(shell nproc)
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup demo smoke test lint report benchmark gpu-check gpu-wheels clean

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	# a real pretrained DCGAN (test bed); --no-deps: its own requirements (wandb, ...) are not needed
	$(VENV)/bin/python -m pip install --quiet --no-deps 'gan-face-generate==1.1.1'
	touch $@

setup: $(VENV)/.installed

demo: setup          ## the whole paper on a laptop CPU (embedded data)
	snakemake --cores $(CORES) --configfile configs/demo.yaml

smoke: setup         ## the same at toy size
	snakemake --cores $(CORES) --configfile configs/smoke.yaml

test: setup          ## unit tests + one end-to-end smoke run (a worker per core, one test file per worker at a time)
	pytest -q -rs -n $(CORES) --dist loadfile --durations=25

report: setup        ## HTML report of the demo run (tables, figures, captions)
	snakemake --report results/report.zip --configfile configs/demo.yaml

lint: setup
	snakemake --lint --configfile configs/smoke.yaml

benchmark: setup
	python benchmarks/synth_throughput.py

# One GPU machine, no network, ~8 min (README "GPU check"); no setup: snakemake comes from wheels/.
GPU_CHECK_OUT ?= results/gpu_check
gpu-check:           ## smoke run on CUDA + zoo/extractor throughput + projected GPU-hours ($$OUT or GPU_CHECK_OUT)
	bash benchmarks/gpu_check.sh $(GPU_CHECK_OUT)

gpu-wheels: setup    ## fill wheels/ for gpu-check (snakemake & co. for Python 3.12); needs an index
	PYTHON=$(VENV)/bin/python bash benchmarks/gpu_wheels.sh

clean:
	rm -rf results .snakemake
