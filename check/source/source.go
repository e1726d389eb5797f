package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/manifest"
)

// Files reads objects from files, directories (every *.yaml, *.yml and
// *.json below them) and "-" (stdin). Errors of single documents are
// returned joined, with every object that could be read.
func Files(paths []string, stdin io.Reader, lim manifest.Limits) ([]*check.Object, error) {
	var out []*check.Object
	var errs []error
	read := func(r io.Reader, name string) {
		docs, err := manifest.Parse(r, name, lim)
		if err != nil {
			errs = append(errs, err)
		}
		for _, d := range docs {
			o, err := check.NewManifestObject(d.Object, d.Source)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", d.Source, err))
				continue
			}
			out = append(out, o)
		}
	}
	for _, p := range paths {
		if p == "-" {
			read(stdin, "stdin")
			continue
		}
		var files []string
		err := filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			ext := strings.ToLower(filepath.Ext(path))
			if path == p || ext == ".yaml" || ext == ".yml" || ext == ".json" {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("source: %w", err))
			continue
		}
		sort.Strings(files)
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("source: %w", err))
				continue
			}
			read(fh, f)
			fh.Close()
		}
	}
	return out, errors.Join(errs...)
}

// Cluster lists the objects checks need from a live cluster: workloads,
// services, ingresses, RBAC, service accounts, namespaces and network
// policies. Namespace "" means all namespaces. A kind the caller may not
// list is skipped and named in the returned error; the rest is kept.
func Cluster(ctx context.Context, c kubernetes.Interface, namespace string) ([]*check.Object, error) {
	opts := metav1.ListOptions{}
	var out []*check.Object
	var errs []error
	add := func(kind string, list runtime.Object, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("source: list %s: %w", kind, err))
			return
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			errs = append(errs, fmt.Errorf("source: %s: %w", kind, err))
			return
		}
		for _, it := range items {
			if Owned(it) {
				continue
			}
			o, err := check.NewObject(it)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			o.Source = "cluster"
			out = append(out, o)
		}
	}
	ns := namespace
	l1, e := c.CoreV1().Pods(ns).List(ctx, opts)
	add("pods", l1, e)
	l2, e := c.AppsV1().Deployments(ns).List(ctx, opts)
	add("deployments", l2, e)
	l3, e := c.AppsV1().StatefulSets(ns).List(ctx, opts)
	add("statefulsets", l3, e)
	l4, e := c.AppsV1().DaemonSets(ns).List(ctx, opts)
	add("daemonsets", l4, e)
	l5, e := c.AppsV1().ReplicaSets(ns).List(ctx, opts)
	add("replicasets", l5, e)
	l6, e := c.CoreV1().ReplicationControllers(ns).List(ctx, opts)
	add("replicationcontrollers", l6, e)
	l7, e := c.BatchV1().Jobs(ns).List(ctx, opts)
	add("jobs", l7, e)
	l8, e := c.BatchV1().CronJobs(ns).List(ctx, opts)
	add("cronjobs", l8, e)
	l9, e := c.CoreV1().Services(ns).List(ctx, opts)
	add("services", l9, e)
	l10, e := c.NetworkingV1().Ingresses(ns).List(ctx, opts)
	add("ingresses", l10, e)
	l11, e := c.NetworkingV1().NetworkPolicies(ns).List(ctx, opts)
	add("networkpolicies", l11, e)
	l12, e := c.CoreV1().ServiceAccounts(ns).List(ctx, opts)
	add("serviceaccounts", l12, e)
	l13, e := c.RbacV1().Roles(ns).List(ctx, opts)
	add("roles", l13, e)
	l14, e := c.RbacV1().RoleBindings(ns).List(ctx, opts)
	add("rolebindings", l14, e)
	if namespace == "" {
		l15, e := c.CoreV1().Namespaces().List(ctx, opts)
		add("namespaces", l15, e)
		l16, e := c.RbacV1().ClusterRoles().List(ctx, opts)
		add("clusterroles", l16, e)
		l17, e := c.RbacV1().ClusterRoleBindings().List(ctx, opts)
		add("clusterrolebindings", l17, e)
	}
	return out, errors.Join(errs...)
}

// Owned reports whether a controller other than a Node owns obj, so that
// its owner is the object to assess.
func Owned(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	if err != nil {
		return false
	}
	for _, r := range m.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller && r.Kind != "Node" {
			return true
		}
	}
	return false
}
