# Everything a fresh clone needs: `make demo` and `make test` create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LIGHT = $(shell $(BIN)/python -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend/test/data/light'))")

.PHONY: demo test install bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q onnxscore
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/onnxscore analyze $(LIGHT)/light_resnet50.onnx --accuracy 76.13 --no-layers

test: $(STAMP)
	$(BIN)/python -m pytest -q

fuzz: $(STAMP)  # seeded mutants of real models; crashers saved as regression files
	$(BIN)/python -m tests.fuzz --mutants $${FUZZ_MUTANTS:-10000} --save fuzz-crashers

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m compileall -q onnxscore  # bytecode, as a regular install has it
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
