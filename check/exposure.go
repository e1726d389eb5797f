package check

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bulwark-sec/bulwark/severity"
)

// sensitiveApp is an application that must not face the outside world.
type sensitiveApp struct {
	name   string
	images []string // substrings of the image repository
	ports  []int32  // well-known ports, used when no workload is in view
}

var sensitiveApps = []sensitiveApp{
	{"Kubernetes dashboard", []string{"kubernetes-dashboard", "kubernetesui/dashboard"}, nil},
	{"Kubeflow", []string{"kubeflow", "ml-pipeline", "centraldashboard"}, nil},
	{"Redis", []string{"redis"}, []int32{6379}},
	{"PostgreSQL", []string{"postgres"}, []int32{5432}},
	{"MySQL", []string{"mysql", "mariadb"}, []int32{3306}},
	{"MongoDB", []string{"mongo"}, []int32{27017}},
	{"Elasticsearch", []string{"elasticsearch", "opensearch"}, []int32{9200}},
	{"etcd", []string{"etcd"}, []int32{2379}},
	{"Jupyter", []string{"jupyter"}, []int32{8888}},
	{"Argo Workflows", []string{"argoproj/argocli", "argo-server"}, []int32{2746}},
	{"Memcached", []string{"memcached"}, []int32{11211}},
}

// ExposureChecks find sensitive applications behind LoadBalancer or
// NodePort Services.
func ExposureChecks() []Check {
	return []Check{{
		ID: "exp-sensitive-app-exposed", Title: "Sensitive applications must not be exposed outside the cluster",
		Description: "A dashboard, notebook or database behind a LoadBalancer or NodePort is reachable from outside the cluster, often without authentication.",
		Severity:    severity.High, References: []Reference{{Framework: FrameworkExposure, Control: "sensitive-app-exposed"}},
		Techniques: []Technique{tExposedApp, tExposed},
		Fix:        Fix{Field: "spec.type", Value: "ClusterIP", Text: "make the Service ClusterIP and reach it through an authenticated ingress or port-forward"},
		Inventory: func(inv *Inventory, _ *Config) []Result {
			var out []Result
			workloads := inv.Workloads()
			for _, o := range inv.Kind("Service") {
				svc, ok := o.Typed.(*corev1.Service)
				if !ok || (svc.Spec.Type != corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeNodePort) {
					continue
				}
				if app, via := exposedApp(svc, workloads); app != "" {
					out = append(out, Result{Object: o.Ref, Source: o.Source, Field: "spec.type",
						Message: fmt.Sprintf("%s Service exposes %s (%s)", svc.Spec.Type, app, via)})
				}
			}
			return out
		},
	}}
}

func exposedApp(svc *corev1.Service, workloads []*Object) (app, via string) {
	if len(svc.Spec.Selector) > 0 {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, w := range workloads {
			if w.Ref.Namespace != svc.Namespace || !sel.Matches(labels.Set(w.Pod.Meta.Labels)) {
				continue
			}
			for _, c := range w.Pod.containers() {
				img := strings.ToLower(c.C.Image)
				for _, a := range sensitiveApps {
					for _, s := range a.images {
						if strings.Contains(img, s) {
							return a.name, fmt.Sprintf("%s %s runs %s", w.Ref.Kind, w.Ref.Name, c.C.Image)
						}
					}
				}
			}
		}
	}
	for _, p := range svc.Spec.Ports {
		for _, a := range sensitiveApps {
			for _, port := range a.ports {
				if p.Port == port || p.TargetPort.IntValue() == int(port) {
					return a.name, fmt.Sprintf("port %d", p.Port)
				}
			}
		}
	}
	return "", ""
}
