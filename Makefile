# The two commands of the README:
#   make demo   set up, generate a few hundred thousand rows in Zarr, fit them, print the summary
#   make test   set up if needed, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := demo-data

.PHONY: demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	mkdir -p $(DEMO)
	$(BIN)/daskem generate $(DEMO)/data.zarr --n-samples 400000 --n-features 16 --n-components 8 --seed 0 --overwrite
	$(BIN)/daskem fit $(DEMO)/data.zarr --variable X --n-components 8 --out $(DEMO)/model.zarr --overwrite
	$(BIN)/daskem --quiet select $(DEMO)/data.zarr --variable X --n-components 1-10 --covariance-types full,diag --out $(DEMO)/selection --overwrite
	$(BIN)/daskem predict $(DEMO)/model.zarr $(DEMO)/data.zarr --variable X --out $(DEMO)/scores.zarr --overwrite
	$(BIN)/daskem plot convergence $(DEMO)/model.zarr --out $(DEMO)/convergence.png --overwrite
	$(BIN)/daskem plot selection $(DEMO)/selection --out $(DEMO)/selection.png --overwrite
	$(BIN)/daskem plot components $(DEMO)/model.zarr $(DEMO)/data.zarr --variable X --out $(DEMO)/components.png --overwrite

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_vs_sklearn.py
	$(BIN)/python benchmarks/bench_select.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .hypothesis
