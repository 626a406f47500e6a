// The real node's NetworkPolicy enforcer: sigs.k8s.io/kube-network-policies (Apache-2.0) as a
// library, with the entrypoint changed in two ways (built by hack/build-cluster-bin.sh).
//
//   - The dataplane hook is an iptables rule, not nftables: upstream queues new connections to
//     userspace with nftables' `queue` expression (CONFIG_NFT_QUEUE), which the harness's
//     kernel lacks. It has the xtables NFQUEUE target, so this inserts
//     `-t mangle -I FORWARD -m conntrack --ctstate NEW -j NFQUEUE --queue-num N` (as
//     kube-network-policies v0.1.0 did in its iptables mode; that release is not on the Go
//     module proxy) and removes it on exit. The library still tries its nftables table, which
//     the kernel rejects as a whole (one atomic batch); it logs that and carries on.
//   - The API server comes from --kubeconfig: upstream only runs in a pod (rest.InClusterConfig).
//
// Everything else (informers, the NFQUEUE consumer, the NetworkPolicy evaluation) is upstream's.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"golang.org/x/sys/unix"
)

var (
	queueID            int
	metricsBindAddress string
	kubeconfig         string
	nodeName           string
)

func init() {
	flag.IntVar(&queueID, "nfqueue-id", 100, "Number of the nfqueue used")
	flag.StringVar(&metricsBindAddress, "metrics-bind-address", "127.0.0.1:9080", "The IP address and port for the metrics server to serve on")
	flag.StringVar(&kubeconfig, "kubeconfig", "", "The kubeconfig with which to reach the API server")
	flag.StringVar(&nodeName, "hostname-override", "", "The name of the node this runs on")
	flag.Usage = func() {
		fmt.Fprint(os.Stderr, "Usage: kube-network-policies [options]\n\n")
		flag.PrintDefaults()
	}
}

// queueRule is the iptables rule (table mangle, chain FORWARD) that hands the first packet of
// every forwarded connection to the controller. Without --queue-bypass: while nothing reads
// the queue, new connections are dropped (fail closed, like upstream's default).
func queueRule() []string {
	return []string{"-m", "conntrack", "--ctstate", "NEW", "-j", "NFQUEUE", "--queue-num", strconv.Itoa(queueID)}
}

func iptables(op string) error {
	args := append([]string{"-w", "5", "-t", "mangle", op, "FORWARD"}, queueRule()...)
	out, err := exec.Command("iptables", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %v: %v: %s", args, err, out)
	}
	return nil
}

func main() { os.Exit(run()) }

func run() int {
	klog.InitFlags(nil)
	flag.Parse()
	if _, _, err := net.SplitHostPort(metricsBindAddress); err != nil {
		klog.Errorf("parsing metrics bind address %s: %v", metricsBindAddress, err)
		return 1
	}
	if kubeconfig == "" || nodeName == "" {
		klog.Errorf("--kubeconfig and --hostname-override are required")
		return 1
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		klog.Errorf("reading %s: %v", kubeconfig, err)
		return 1
	}
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		klog.Errorf("creating the client: %v", err)
		return 1
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer cancel()

	informersFactory := informers.NewSharedInformerFactory(clientset, 0)
	http.Handle("/metrics", promhttp.Handler())
	go func() {
		utilruntime.HandleError(http.ListenAndServe(metricsBindAddress, nil))
	}()

	controller, err := networkpolicy.NewController(
		clientset,
		informersFactory.Networking().V1().NetworkPolicies(),
		informersFactory.Core().V1().Namespaces(),
		informersFactory.Core().V1().Pods(),
		nil, nil, nil, nil, // no (Baseline)AdminNetworkPolicy
		networkpolicy.Config{
			QueueID:     queueID,
			NodeName:    nodeName,
			NRIdisabled: true, // pod IPs from the API server; the node's containerd has no NRI socket
		},
	)
	if err != nil {
		klog.Errorf("creating the controller: %v", err)
		return 1
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		utilruntime.HandleError(controller.Run(ctx))
	}()
	informersFactory.Start(ctx.Done())

	if err := iptables("-I"); err != nil {
		klog.Error(err)
		return 1
	}
	defer func() {
		if err := iptables("-D"); err != nil {
			klog.Error(err)
		}
	}()
	klog.Infof("queueing new forwarded connections to NFQUEUE %d", queueID)

	select {
	case <-ctx.Done():
		klog.Info("Exiting: received signal")
	case <-done:
		klog.Error("the controller stopped")
		return 1
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return 0
}
