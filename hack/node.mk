# A real node (containerd, kubelet, kube-proxy, CoreDNS) with the control plane, all inside a
# network namespace of its own (see hack/devenv/node.py). Needs root with CAP_SYS_ADMIN and
# Debian's runc, containernetworking-plugins, iproute2, iptables, gcc and busybox-static.
.PHONY: node-deps node-up node-down node-test

node-deps: ## install Debian's runc, CNI plugins, gcc and busybox-static for the real node (as root, only when missing)
	@missing=$$(for p in runc containernetworking-plugins iproute2 iptables gcc libc6-dev busybox-static; do \
		dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

node-up: setup node-deps cluster-bin ## start the control plane and a real node in a network namespace (state in _out/node/)
	$(HARNESS) devenv.node up --dir _out/node

node-down: setup ## stop the node started by node-up and check that nothing is left behind
	$(HARNESS) devenv.node down --dir _out/node

node-test: setup node-deps cluster-bin ## the real node's integration test (pods, Service, DNS, Job, clean teardown)
	$(PY) -m pytest -q tests/integration/test_real_node.py
