# The Helm chart (charts/rollforward) and the GitOps assets (gitops/).
CHART_DIR := charts/rollforward
HELM = $(shell PYTHONPATH=operator:hack $(PY) -c 'from devenv.cluster import ClusterBinaries; print(ClusterBinaries.from_environment().path("helm"))')

.PHONY: chart-lint chart-docs chart-docs-check chart-template chart-package chart-test gitops-argocd

chart-lint: setup cluster-bin ## helm lint --strict with every ci/ values file, and check the generated docs
	@for values in $(CHART_DIR)/ci/*-values.yaml; do \
		echo "helm lint --strict -f $$values"; \
		$(HELM) lint --strict $(CHART_DIR) -f $$values || exit 1; \
	done
	$(PY) $(CHART_DIR)/hack/chart_docs.py --check
	$(PY) gitops/argocd/render_argocd_cm.py --check

chart-docs: setup ## regenerate the chart's README.md and values.schema.json from values.yaml comments
	$(PY) $(CHART_DIR)/hack/chart_docs.py

chart-docs-check: setup ## fail when the chart's README.md or values.schema.json is stale
	$(PY) $(CHART_DIR)/hack/chart_docs.py --check

chart-template: setup cluster-bin ## render the chart with its defaults to _out/chart/rollforward.yaml
	mkdir -p _out/chart
	$(HELM) template rollforward $(CHART_DIR) -n rollforward-system > _out/chart/rollforward.yaml
	@echo "_out/chart/rollforward.yaml"

chart-package: setup cluster-bin ## helm package (follows files/crds -> crds/) into _out/chart/
	mkdir -p _out/chart
	$(HELM) package $(CHART_DIR) -d _out/chart

chart-test: setup system-deps cluster-bin ## the chart's and gitops' unit and integration tests
	$(PY) -m pytest -q tests/unit/test_chart_values.py tests/unit/test_chart_monitoring.py \
		tests/unit/test_argocd_health.py tests/integration/test_helm_chart.py

gitops-argocd: setup ## regenerate gitops/argocd/argocd-cm-rollforward.yaml from the Lua files
	$(PY) gitops/argocd/render_argocd_cm.py
