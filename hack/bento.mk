# The Soom upsell bento: build it, and benchmark the cost of its instrumentation.
# BENTOML_HOME chooses the BentoML store (default: ~/bentoml).
BENTO_PYTHONPATH := operator:bentos
BENTO_OUT := _out/bento

.PHONY: bento bentos bench-bento

bento: setup ## train the Soom upsell model on `baseline` and build its bento (v1)
	mkdir -p $(BENTO_OUT)
	PYTHONPATH=$(BENTO_PYTHONPATH) $(PY) -m upsell.retrain --scenario baseline --seed 0 \
		--output $(BENTO_OUT)/v1.json
	@echo "bento: $$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' $(BENTO_OUT)/v1.json)"

bench-bento: setup ## Soom bento latency with vs without rollforward.serving (bench-results/serving-overhead.md)
	PYTHONPATH=$(BENTO_PYTHONPATH):hack $(PY) bench/bench_serving_overhead.py \
		--output bench-results/serving-overhead.md

# The README example's bentos: `upsell:v1` (logistic regression, the champion) and
# `upsell:v1-gbm` (gradient-boosted trees, the A/B challenger), both on `baseline`, seed 0.
bentos: setup ## build the README example's bentos upsell:v1 and upsell:v1-gbm into BENTOML_HOME
	mkdir -p $(BENTO_OUT)
	PYTHONPATH=$(BENTO_PYTHONPATH) $(PY) -m upsell.retrain --scenario baseline --seed 0 \
		--bento-tag upsell:v1 --output $(BENTO_OUT)/upsell-v1.json
	PYTHONPATH=$(BENTO_PYTHONPATH) $(PY) -m upsell.retrain --scenario baseline --seed 0 \
		--algorithm gbm --bento-tag upsell:v1-gbm --output $(BENTO_OUT)/upsell-v1-gbm.json
	$(VENV)/bin/bentoml list upsell
