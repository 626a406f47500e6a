# The whole loop on one machine, on a real node (see hack/devenv/demo.py): state in _out/demo/,
# report in demo-report/; every process it starts is stopped at the end. It needs the real
# node's packages and binaries and the project images (imported into the node's containerd);
# it trains the README's bentos upsell:v1 and upsell:v1-gbm itself, while the node starts.
.PHONY: demo demo-bad-candidate

DEMO := PYTHONPATH=operator:hack:bentos $(PY) -m devenv.demo
DEMO_NEEDS := setup node-deps cluster-bin images

demo: $(DEMO_NEEDS) ## the whole loop on a real node: drift, retraining Job, canary, promotion (report in demo-report/)
	$(DEMO)

demo-bad-candidate: $(DEMO_NEEDS) ## the same, with a candidate that answers 503s: rolled back
	$(DEMO) --bad-candidate --report demo-report/bad-candidate
