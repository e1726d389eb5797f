package check

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bulwark-sec/bulwark/severity"
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrInvalidCheck: a check definition is incomplete or inconsistent.
	ErrInvalidCheck = errors.New("check: invalid check")
	// ErrDuplicateID: two checks share an ID.
	ErrDuplicateID = errors.New("check: duplicate check ID")
	// ErrCEL: a user check's CEL expression does not compile or evaluate.
	ErrCEL = errors.New("check: CEL")
)

// Framework names used in References.
const (
	FrameworkPSSBaseline   = "PSS baseline"
	FrameworkPSSRestricted = "PSS restricted"
	FrameworkDefender      = "Defender for Containers"
	FrameworkCIS           = "CIS Kubernetes Benchmark"
	FrameworkExposure      = "Bulwark exposure"
	FrameworkUser          = "User"
)

// Reference is one control of a framework that a check implements.
type Reference struct {
	Framework string `json:"framework"`
	Control   string `json:"control,omitempty"` // "5.1.1", "baseline/privileged"
}

// Technique is an attack technique a check guards against, in MITRE ATT&CK
// (Containers matrix) or the Microsoft threat matrix for Kubernetes.
type Technique struct {
	Matrix string `json:"matrix"` // "MITRE ATT&CK" or "Microsoft Kubernetes"
	ID     string `json:"id"`     // "T1611", "MS-TA9013"
	Name   string `json:"name"`
}

var (
	tEscapeToHost   = Technique{"MITRE ATT&CK", "T1611", "Escape to Host"}
	tPrivileged     = Technique{"Microsoft Kubernetes", "MS-TA9013", "Privileged container"}
	tHostPath       = Technique{"Microsoft Kubernetes", "MS-TA9015", "Writable hostPath mount"}
	tContainerAdmin = Technique{"MITRE ATT&CK", "T1609", "Container Administration Command"}
	tValidAccounts  = Technique{"MITRE ATT&CK", "T1078.001", "Valid Accounts: Default Accounts"}
	tSAToken        = Technique{"Microsoft Kubernetes", "MS-TA9016", "Access container service account"}
	tClusterAdmin   = Technique{"Microsoft Kubernetes", "MS-TA9019", "Cluster-admin binding"}
	tSecrets        = Technique{"MITRE ATT&CK", "T1552.007", "Unsecured Credentials: Container API"}
	tExposed        = Technique{"MITRE ATT&CK", "T1133", "External Remote Services"}
	tExposedApp     = Technique{"Microsoft Kubernetes", "MS-TA9003", "Exposed sensitive interfaces"}
	tImage          = Technique{"MITRE ATT&CK", "T1610", "Deploy Container"}
	tBackdoor       = Technique{"Microsoft Kubernetes", "MS-TA9011", "Backdoor container"}
	tResource       = Technique{"MITRE ATT&CK", "T1496", "Resource Hijacking"}
	tNetworkScan    = Technique{"MITRE ATT&CK", "T1046", "Network Service Discovery"}
	tLateral        = Technique{"Microsoft Kubernetes", "MS-TA9032", "Cluster internal networking"}
	tImpairDefenses = Technique{"MITRE ATT&CK", "T1562", "Impair Defenses"}
)

// Fix says how to make an object pass: set Field (a path relative to the
// object, as in Result.Field) to Value. Text is the same for a person.
type Fix struct {
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
	Text  string `json:"text"`
}

// Violation is what a check function returns for one failing spot of an
// object: the field path (from the object's root, "spec.template.spec.
// containers[0].securityContext.privileged"), the container it is in (empty
// for pod- or object-level fields) and a message with the offending values.
type Violation struct {
	Field     string
	Container string
	Message   string
}

// ObjectFunc checks one object. It must be pure: same object and config,
// same violations, in the same order; it must not modify the object.
type ObjectFunc func(o *Object, cfg *Config) []Violation

// InventoryFunc checks a snapshot of many objects. It returns results
// naming the object each one is about.
type InventoryFunc func(inv *Inventory, cfg *Config) []Result

// Check is one hardening check. Exactly one of Object and Inventory is set.
type Check struct {
	ID          string
	Title       string
	Description string
	Severity    severity.Level
	References  []Reference
	Techniques  []Technique
	Fix         Fix
	// Kinds limits Object to these kinds ("Pod", "Deployment", ...);
	// KindWorkload stands for every kind with a pod template. Empty: all.
	Kinds []string

	Object    ObjectFunc
	Inventory InventoryFunc
}

// KindWorkload in Check.Kinds matches every kind with a pod template.
const KindWorkload = "*workload"

// Frameworks returns the distinct framework names of the check's references.
func (c *Check) Frameworks() []string {
	var out []string
	for _, r := range c.References {
		if !contains(out, r.Framework) {
			out = append(out, r.Framework)
		}
	}
	return out
}

func (c *Check) validate() error {
	switch {
	case c.ID == "" || strings.ContainsAny(c.ID, " \t\n,"):
		return fmt.Errorf("%w: id %q must be non-empty without spaces or commas", ErrInvalidCheck, c.ID)
	case c.Title == "":
		return fmt.Errorf("%w: %s: no title", ErrInvalidCheck, c.ID)
	case (c.Object == nil) == (c.Inventory == nil):
		return fmt.Errorf("%w: %s: exactly one of Object and Inventory must be set", ErrInvalidCheck, c.ID)
	case c.Severity < severity.Info || c.Severity > severity.Critical:
		return fmt.Errorf("%w: %s: severity %v", ErrInvalidCheck, c.ID, c.Severity)
	}
	return nil
}

func (c *Check) appliesTo(o *Object) bool {
	if len(c.Kinds) == 0 {
		return true
	}
	for _, k := range c.Kinds {
		if k == o.Ref.Kind || (k == KindWorkload && o.Pod != nil) {
			return true
		}
	}
	return false
}

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Result is one failed check on one spot of one object.
type Result struct {
	CheckID    string         `json:"checkId"`
	Title      string         `json:"title"`
	Severity   severity.Level `json:"severity"`
	Object     ObjectRef      `json:"object"`
	Container  string         `json:"container,omitempty"`
	Field      string         `json:"field,omitempty"`
	Message    string         `json:"message"`
	Fix        Fix            `json:"fix"`
	References []Reference    `json:"references,omitempty"`
	Techniques []Technique    `json:"techniques,omitempty"`
	// Source is the file (and document index) the object came from, when known.
	Source string `json:"source,omitempty"`
}

// SortResults orders results by object, check ID, container, then field;
// every caller presents them in this order.
func SortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Object.Namespace != b.Object.Namespace {
			return a.Object.Namespace < b.Object.Namespace
		}
		if a.Object.Kind != b.Object.Kind {
			return a.Object.Kind < b.Object.Kind
		}
		if a.Object.Name != b.Object.Name {
			return a.Object.Name < b.Object.Name
		}
		if a.CheckID != b.CheckID {
			return a.CheckID < b.CheckID
		}
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		return a.Field < b.Field
	})
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
