# Local control plane and Prometheus (see hack/build-cluster-bin.sh and hack/devenv/).
.PHONY: cluster-bin cluster-up cluster-down prometheus-up prometheus-down

HARNESS := PYTHONPATH=operator:hack $(PY) -m

cluster-bin: ## build or reuse the control plane, kubelet, kube-proxy, containerd, CoreDNS, etcd, kwok, helm, Prometheus, versitygw and kube-network-policies
	bash hack/build-cluster-bin.sh >/dev/null

cluster-up: setup cluster-bin ## start etcd, apiserver, controllers, scheduler and 3 kwok nodes (state in _out/cluster/)
	$(HARNESS) devenv.cluster up --dir _out/cluster

cluster-down: setup ## stop the cluster started by cluster-up
	$(HARNESS) devenv.cluster down --dir _out/cluster

prometheus-up: setup ## start Prometheus on loopback, 1s scrapes, file_sd targets (state in _out/prometheus/)
	$(HARNESS) devenv.prometheus up --dir _out/prometheus

prometheus-down: setup ## stop the Prometheus started by prometheus-up
	$(HARNESS) devenv.prometheus down --dir _out/prometheus
