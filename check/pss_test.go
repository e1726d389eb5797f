package check

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/bulwark-sec/bulwark/manifest"
	"github.com/bulwark-sec/bulwark/testenv"
)

// psaFixtures loads the pods that k8s.io/pod-security-admission's own test
// suite generates (test/testdata/<level>/<version>/<pass|fail>/*.yaml),
// de-duplicated, with the verdict PSA's suite expects at that level and
// version.
type psaFixture struct {
	pod         *corev1.Pod
	file        string
	level       api.Level
	version     api.Version
	wantAllowed bool
}

func psaFixtures(t *testing.T) []psaFixture {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/pod-security-admission").Output()
	testenv.Require(t, err == nil, "go list k8s.io/pod-security-admission: %v", err)
	root := filepath.Join(strings.TrimSpace(string(out)), "test", "testdata")
	files, _ := filepath.Glob(filepath.Join(root, "*", "v*", "*", "*.yaml"))
	testenv.Require(t, len(files) > 1000, "PSA fixtures not found under %s", root)
	var fx []psaFixture
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		parts := strings.Split(rel, string(filepath.Separator))
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifest.Parse(strings.NewReader(string(b)), rel, manifest.Limits{})
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v (%d objects)", rel, err, len(objs))
		}
		v, err := api.ParseVersion(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		fx = append(fx, psaFixture{objs[0].Object.(*corev1.Pod), rel, api.Level(parts[0]), v, parts[2] == "pass"})
	}
	return fx
}

// TestPSSMatchesPodSecurityAdmission evaluates every PSA fixture pod at
// every level and every version with both PSA's own evaluator and this
// package's engine, and wants the same verdict and the same reasons.
func TestPSSMatchesPodSecurityAdmission(t *testing.T) {
	fx := psaFixtures(t)
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Unique pods: the same pod appears under many versions.
	seen := map[string]bool{}
	var pods []*corev1.Pod
	for _, f := range fx {
		b, _ := json.Marshal(f.pod)
		if !seen[string(b)] {
			seen[string(b)] = true
			pods = append(pods, f.pod)
		}
	}
	versions := PSSVersions()
	engines := map[string]*Engine{}
	for _, lvl := range []string{"baseline", "restricted"} {
		for _, v := range append(versions, "latest") {
			e, err := NewEngine(Config{PSSLevel: lvl, PSSVersion: v}, PSSChecks())
			if err != nil {
				t.Fatal(err)
			}
			engines[lvl+"/"+v] = e
		}
	}
	compared, denied := 0, 0
	for _, pod := range pods {
		o, err := NewObject(pod)
		if err != nil {
			t.Fatal(err)
		}
		for key, e := range engines {
			lvl, ver, _ := strings.Cut(key, "/")
			lv := api.LevelVersion{Level: api.Level(lvl), Version: api.LatestVersion()}
			if ver != "latest" {
				lv.Version, _ = api.ParseVersion(ver)
			}
			agg := psapolicy.AggregateCheckResults(eval.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec))
			res := e.Object(o)
			if agg.Allowed != (len(res) == 0) {
				t.Errorf("pod %s at %s: PSA allowed=%v (%s), Bulwark results %v", pod.Name, key, agg.Allowed, agg.ForbiddenDetail(), resultIDs(res))
				continue
			}
			// Every reason PSA gives is in our messages, and vice versa.
			var ours []string
			for _, r := range res {
				reason, _, _ := strings.Cut(r.Message, " (")
				if !slices.Contains(ours, reason) {
					ours = append(ours, reason)
				}
			}
			theirs := slices.Clone(agg.ForbiddenReasons)
			sort.Strings(ours)
			sort.Strings(theirs)
			theirs = slices.Compact(theirs)
			if !slices.Equal(ours, theirs) {
				t.Errorf("pod %s at %s: PSA reasons %q, ours %q", pod.Name, key, theirs, ours)
			}
			compared++
			if !agg.Allowed {
				denied++
			}
		}
	}
	t.Logf("compared %d verdicts (%d pods x %d level/versions), %d denials", compared, len(pods), len(engines), denied)
	if denied == 0 || denied == compared {
		t.Fatalf("fixtures gave %d denials of %d: not a real comparison", denied, compared)
	}
}

// TestPSSFixtureVerdicts checks each fixture at the level and version PSA's
// suite files it under: pass/ must be allowed, fail/ denied.
func TestPSSFixtureVerdicts(t *testing.T) {
	fx := psaFixtures(t)
	engines := map[string]*Engine{}
	for _, f := range fx {
		key := string(f.level) + "/" + f.version.String()
		e := engines[key]
		if e == nil {
			var err error
			e, err = NewEngine(Config{PSSLevel: string(f.level), PSSVersion: f.version.String()}, PSSChecks())
			if err != nil {
				t.Fatal(err)
			}
			engines[key] = e
		}
		o, err := NewManifestObject(f.pod.DeepCopy(), f.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(e.Object(o)) == 0; got != f.wantAllowed {
			t.Errorf("%s: allowed=%v, want %v", f.file, got, f.wantAllowed)
		}
	}
}

func resultIDs(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.CheckID+":"+r.Field)
	}
	return out
}
