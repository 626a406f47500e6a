# Local control plane targets (owned by the control-plane work; see hack/build-cluster-bin.sh).
.PHONY: cluster-bin

cluster-bin: ## build or reuse kube-apiserver, controller-manager, scheduler, kubectl, etcd, kwok and helm
	bash hack/build-cluster-bin.sh >/dev/null
