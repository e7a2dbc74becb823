# Two commands for a newcomer: `make demo` and `make test`. Each builds .venv itself.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
NNSMT   = $(VENV)/bin/nnsmt
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench golden clean docs docs-check

DEMO_STAMP = $(VENV)/.demo-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# make test: everything the tests need (torch for the PyTorch frontend tests, Ray, ...)
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "nnsmt needs Python >= 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,torch]'
	rm -f $(VENV)/.installed-* $(VENV)/.demo-*; touch $@ $(DEMO_STAMP)

# make demo: only what the demo runs (nnsmt and onnxruntime for the float replay)
$(DEMO_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "nnsmt needs Python >= 3.11"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[ort]'
	rm -f $(VENV)/.demo-*; touch $@

# Verify the shipped example network on Z3: one violated property (sat, with a validated
# counterexample; exit code 10), one that holds (unsat; exit code 0), and the SMT-LIB2 compiled.
demo: $(DEMO_STAMP)
	@echo "== the network"; $(NNSMT) inspect examples/classifier.onnx
	@echo; echo "== nnsmt verify examples/classifier.onnx examples/class1_margin.vnnlib   (expect sat)"
	@$(NNSMT) verify examples/classifier.onnx examples/class1_margin.vnnlib; test $$? -eq 10
	@echo; echo "== nnsmt verify examples/classifier.onnx examples/corner_robust.vnnlib   (expect unsat)"
	@mkdir -p out && $(NNSMT) verify examples/classifier.onnx examples/corner_robust.vnnlib --certificate out/demo_proof.json
	@echo; echo "== nnsmt check-certificate out/demo_proof.json   (the unsat's proof, replayed independently: expect valid)"
	@$(NNSMT) check-certificate out/demo_proof.json examples/classifier.onnx examples/corner_robust.vnnlib
	@echo; echo "== nnsmt verify examples/class1_margin_f32.vnnlib --network classifier=examples/classifier.onnx   (VNN-LIB 2, float32: expect sat)"
	@mkdir -p out && $(NNSMT) verify examples/class1_margin_f32.vnnlib --network classifier=examples/classifier.onnx \
		2>/dev/null > out/demo_v2.txt; cat out/demo_v2.txt; test "$$(head -n 1 out/demo_v2.txt)" = sat
	@echo; echo "== the SMT-LIB2 it compiled (first 25 lines of out/demo.smt2)"
	@mkdir -p out && $(NNSMT) compile examples/classifier.onnx --property examples/class1_margin.vnnlib \
		--mode verify --emit smt2 -o out/demo.smt2 && head -n 25 out/demo.smt2 && echo "..."

test: $(STAMP)
	$(PY) -m pytest -q -rs

bench: $(STAMP)
	$(PY) -m pytest -q -rs -m slow   # the long cases kept out of make test
	$(PY) bench/compile_speed.py
	nice $(PY) bench/estimate.py
	nice $(PY) bench/train_scaling.py
	nice $(PY) bench/stability.py
	nice $(PY) bench/batch.py --count 6 --timeout 30
	-$(PY) -m pip install -q -e '.[bench]'   # Marabou, for the comparison (skipped if unavailable)
	nice $(PY) bench/acasxu.py   # long: up to 2 x 21 x 116 s


# The API reference: HTML from the docstrings (pdoc) in docs/api/ (not committed). docs-check
# builds it into a temporary folder and fails on any pdoc warning or unresolved reference.
docs: $(STAMP)
	$(PY) docs/apidoc.py -o docs/api

docs-check: $(STAMP)
	$(PY) docs/apidoc.py --check

# Regenerate the golden SMT-LIB files after an intended printer change (then review the diff).
golden: $(STAMP)
	$(PY) -m pytest -q tests/test_smtlib.py --update-golden

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
