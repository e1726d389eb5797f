package k8sscan_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/check/k8sscan"
	"github.com/bulwark-sec/bulwark/check/source"
	"github.com/bulwark-sec/bulwark/manifest"
	"github.com/bulwark-sec/bulwark/testenv"
)

const manifestYAML = `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      hostNetwork: true
      containers:
      - {name: app, image: redis:7, securityContext: {privileged: true}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 6379}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-maker}
rules: [{apiGroups: [""], resources: [pods], verbs: [create, get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: pod-maker, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-maker}
subjects: [{kind: User, name: bob}]
`

func keys(rs []check.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s %s", r.Object, r.CheckID, r.Field))
	}
	sort.Strings(out)
	return out
}

// TestLiveMatchesManifest applies a manifest to a real apiserver and wants
// the live scan to report what the manifest scan reports for those objects.
func TestLiveMatchesManifest(t *testing.T) {
	k := testenv.KubeAPIServer(t)
	ctx := context.Background()
	docs, err := manifest.Parse(strings.NewReader(manifestYAML), "m.yaml", manifest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(k.Config)
	groups, err := restmapper.GetAPIGroupResources(k.Client.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	for _, d := range docs {
		gvk := d.Object.GetObjectKind().GroupVersionKind()
		m, err := mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if u.Object, err = runtimeToMap(d.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(m.Resource).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", d.Source, err)
		}
	}
	opts := k8sscan.Options{Config: check.Config{}}
	fromFile, err := k8sscan.Scan(ctx, k8sscan.Options{Files: []string{"-"}, Stdin: strings.NewReader(manifestYAML)})
	if err != nil {
		t.Fatal(err)
	}
	opts.Client = k.Client
	live, err := k8sscan.Scan(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The live cluster also has its own objects (bootstrap RBAC, the
	// default namespace): compare the objects of the manifest only.
	mine := map[string]bool{}
	for _, d := range docs {
		o, _ := check.NewObject(d.Object)
		mine[o.Ref.String()] = true
	}
	mine["Namespace/shop"] = true
	var liveMine []check.Result
	for _, r := range live.Results {
		if mine[r.Object.String()] {
			liveMine = append(liveMine, r)
		}
	}
	want := keys(fromFile.Results)
	for _, must := range []string{"pss-baseline-privileged", "exp-sensitive-app-exposed", "cis-5.1.4-create-pods", "cis-5.3.2-network-policy"} {
		if !strings.Contains(strings.Join(want, "\n"), must) {
			t.Fatalf("manifest scan lacks %s: fixture too weak", must)
		}
	}
	if d := cmp.Diff(want, keys(liveMine)); d != "" {
		t.Errorf("live scan differs from manifest scan (-manifest +live):\n%s", d)
	}
	if _, err := source.Cluster(ctx, k.ClientFor(t, "nobody"), ""); err == nil {
		t.Error("a user who may list nothing got no error")
	}
}
