# The whole loop on one machine (see hack/devenv/demo.py): state in _out/demo/, report in
# demo-report/; every process it starts is stopped at the end.
.PHONY: demo demo-bad-candidate

DEMO := PYTHONPATH=operator:hack:bentos $(PY) -m devenv.demo

demo: setup system-deps cluster-bin ## the whole loop on a local cluster: drift, retrain, canary, promotion (report in demo-report/)
	$(DEMO)

demo-bad-candidate: setup system-deps cluster-bin ## the same, with a candidate that answers 503s: rolled back
	$(DEMO) --bad-candidate --report demo-report/bad-candidate
