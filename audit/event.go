package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/bulwark-sec/bulwark/detect"
)

// Errors of decoding; test with errors.Is.
var (
	// ErrMalformed: the input is not an audit.k8s.io/v1 Event or EventList.
	ErrMalformed = errors.New("audit: malformed event")
	// ErrTooLarge: the input is larger than the limit.
	ErrTooLarge = errors.New("audit: input too large")
)

// Limits on hostile input.
const (
	// MaxEventBytes bounds one event; the apiserver's own default for a
	// log line is far smaller unless objects are logged in full.
	MaxEventBytes = 4 << 20
	// MaxBatchEvents bounds the events of one EventList.
	MaxBatchEvents = 100_000
	// maxObjectEvidence: request/response objects larger than this are
	// cut from an alert's evidence (their size and kind are kept).
	maxObjectEvidence = 16 << 10
)

// Event is one audit event with the cluster it came from; it implements
// detect.Event. Decoded request and response objects are cached.
type Event struct {
	auditv1.Event
	Cluster string

	req, resp, spec, obj any
	containers           []any
	decoded              uint8 // bit 1 req, 2 resp, 4 spec, 8 obj
}

// NewEvent wraps an apiserver audit event.
func NewEvent(ev auditv1.Event, cluster string) *Event { return &Event{Event: ev, Cluster: cluster} }

// DecodeEvent reads one JSON audit event (a line of the audit log).
func DecodeEvent(data []byte) (*Event, error) {
	if len(data) > MaxEventBytes {
		return nil, fmt.Errorf("%w: event of %d bytes (limit %d)", ErrTooLarge, len(data), MaxEventBytes)
	}
	var ev auditv1.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := validate(&ev); err != nil {
		return nil, err
	}
	return &Event{Event: ev}, nil
}

// DecodeEventList reads an audit.k8s.io/v1 EventList (a webhook batch).
func DecodeEventList(data []byte) ([]*Event, error) {
	var list auditv1.EventList
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if list.Kind != "EventList" || list.APIVersion != "audit.k8s.io/v1" {
		return nil, fmt.Errorf("%w: kind %q apiVersion %q, want EventList audit.k8s.io/v1", ErrMalformed, list.Kind, list.APIVersion)
	}
	if len(list.Items) > MaxBatchEvents {
		return nil, fmt.Errorf("%w: %d events in one batch (limit %d)", ErrTooLarge, len(list.Items), MaxBatchEvents)
	}
	out := make([]*Event, 0, len(list.Items))
	for i := range list.Items {
		if err := validate(&list.Items[i]); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = append(out, &Event{Event: list.Items[i]})
	}
	return out, nil
}

func validate(ev *auditv1.Event) error {
	if ev.Kind != "" && ev.Kind != "Event" {
		return fmt.Errorf("%w: kind %q", ErrMalformed, ev.Kind)
	}
	if ev.APIVersion != "" && ev.APIVersion != "audit.k8s.io/v1" {
		return fmt.Errorf("%w: apiVersion %q", ErrMalformed, ev.APIVersion)
	}
	if ev.AuditID == "" || ev.Verb == "" || ev.Stage == "" {
		return fmt.Errorf("%w: auditID, stage and verb are required", ErrMalformed)
	}
	return nil
}

// Time is when the event's stage happened (the request's receipt if the
// stage time is missing).
func (e *Event) Time() time.Time {
	if !e.StageTimestamp.IsZero() {
		return e.StageTimestamp.Time
	}
	return e.RequestReceivedTimestamp.Time
}

// Facets are the match keys of audit rules, in index order.
//
//	code          the response code as text ("403"; "" when absent)
//	userKind      serviceaccount, node, anonymous, system (other system: users) or user
//	impersonated  "true" when the request was impersonated, else ""
var Facets = []string{"verb", "resource", "subresource", "apiGroup", "namespace", "name", "user", "stage", "code", "userKind", "impersonated"}

var codeText = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// UserKind classifies a user name.
func UserKind(user string) string {
	switch {
	case strings.HasPrefix(user, "system:serviceaccount:"):
		return "serviceaccount"
	case strings.HasPrefix(user, "system:node:"):
		return "node"
	case user == "system:anonymous":
		return "anonymous"
	case strings.HasPrefix(user, "system:"):
		return "system"
	}
	return "user"
}

// Schema is the detect schema of audit events: the facets above and these
// CEL variables:
//
//	verb, resource, subresource, apiGroup, apiVersion, ns, name  string (objectRef; "" when absent;
//	                       ns because "namespace" is a reserved word in CEL)
//	user, uid string; groups list(string); sourceIPs list(string); userAgent string
//	impersonatedUser string; impersonatedGroups list(string)
//	userNamespace string   namespace of a service-account user ("" otherwise)
//	stage, level, requestURI string; code int (response status, 0 when absent)
//	decision, reason string (the authorization annotations)
//	annotations map(string, string)
//	request, response      the request/response objects as JSON values ({} when not logged)
//	object                 the resulting object: response unless it is a Status, else request
//	podSpec                the pod template of object when it is a Pod, workload or CronJob ({} otherwise)
//	containers             podSpec's containers, initContainers and ephemeralContainers
func Schema() detect.Schema {
	str := func(n string) cel.EnvOption { return cel.Variable(n, cel.StringType) }
	strs := func(n string) cel.EnvOption { return cel.Variable(n, cel.ListType(cel.StringType)) }
	return detect.Schema{
		Source: "audit",
		Facets: Facets,
		Variables: []cel.EnvOption{
			str("verb"), str("resource"), str("subresource"), str("apiGroup"), str("apiVersion"),
			str("ns"), str("name"), str("user"), str("uid"), strs("groups"), strs("sourceIPs"),
			str("userAgent"), str("impersonatedUser"), strs("impersonatedGroups"), str("userNamespace"),
			str("stage"), str("level"), str("requestURI"), cel.Variable("code", cel.IntType),
			str("decision"), str("reason"), cel.Variable("annotations", cel.MapType(cel.StringType, cel.StringType)),
			cel.Variable("request", cel.DynType), cel.Variable("response", cel.DynType), cel.Variable("object", cel.DynType),
			cel.Variable("podSpec", cel.DynType), cel.Variable("containers", cel.ListType(cel.DynType)),
		},
	}
}

// Facet implements detect.Event.
func (e *Event) Facet(i int) string {
	switch i {
	case 0:
		return e.Verb
	case 6:
		return e.User.Username
	case 7:
		return string(e.Stage)
	case 8:
		if e.ResponseStatus != nil && e.ResponseStatus.Code > 0 && int(e.ResponseStatus.Code) < len(codeText) {
			return codeText[e.ResponseStatus.Code]
		}
		return ""
	case 9:
		return UserKind(e.User.Username)
	case 10:
		if e.ImpersonatedUser != nil {
			return "true"
		}
		return ""
	}
	r := e.ObjectRef
	if r == nil {
		return ""
	}
	switch i {
	case 1:
		return r.Resource
	case 2:
		return r.Subresource
	case 3:
		return r.APIGroup
	case 4:
		return r.Namespace
	case 5:
		return r.Name
	}
	return ""
}

// Activation implements detect.Event; the event is its own activation.
func (e *Event) Activation() interpreter.Activation { return e }

// Parent implements interpreter.Activation.
func (e *Event) Parent() interpreter.Activation { return nil }

var emptyObject = map[string]any{}

// ResolveName implements interpreter.Activation.
func (e *Event) ResolveName(name string) (any, bool) {
	ref := e.ObjectRef
	if ref == nil {
		ref = &auditv1.ObjectReference{}
	}
	switch name {
	case "verb":
		return types.String(e.Verb), true
	case "resource":
		return types.String(ref.Resource), true
	case "subresource":
		return types.String(ref.Subresource), true
	case "apiGroup":
		return types.String(ref.APIGroup), true
	case "apiVersion":
		return types.String(ref.APIVersion), true
	case "ns":
		return types.String(ref.Namespace), true
	case "name":
		return types.String(ref.Name), true
	case "user":
		return types.String(e.User.Username), true
	case "uid":
		return types.String(e.User.UID), true
	case "groups":
		return nonNil(e.User.Groups), true
	case "sourceIPs":
		return nonNil(e.SourceIPs), true
	case "userAgent":
		return types.String(e.UserAgent), true
	case "impersonatedUser":
		if e.ImpersonatedUser == nil {
			return "", true
		}
		return e.ImpersonatedUser.Username, true
	case "impersonatedGroups":
		if e.ImpersonatedUser == nil {
			return []string{}, true
		}
		return nonNil(e.ImpersonatedUser.Groups), true
	case "userNamespace":
		return types.String(serviceAccountNamespace(e.User.Username)), true
	case "stage":
		return types.String(e.Stage), true
	case "level":
		return types.String(e.Level), true
	case "requestURI":
		return types.String(e.RequestURI), true
	case "code":
		if e.ResponseStatus == nil {
			return types.IntZero, true
		}
		return types.Int(e.ResponseStatus.Code), true
	case "decision":
		return types.String(e.Annotations["authorization.k8s.io/decision"]), true
	case "reason":
		return types.String(e.Annotations["authorization.k8s.io/reason"]), true
	case "annotations":
		if e.Annotations == nil {
			return map[string]string{}, true
		}
		return e.Annotations, true
	case "request":
		return e.Request(), true
	case "response":
		return e.Response(), true
	case "object":
		return e.Object(), true
	case "podSpec":
		return e.PodSpec(), true
	case "containers":
		e.PodSpec()
		return e.containers, true
	}
	return nil, false
}

// Request returns the request object decoded as JSON values, or an empty
// map when the policy did not log it or it does not parse.
func (e *Event) Request() any {
	if e.decoded&1 == 0 {
		e.decoded |= 1
		e.req = decodeObject(e.RequestObject)
	}
	return e.req
}

// Response returns the response object decoded as JSON values, or an
// empty map.
func (e *Event) Response() any {
	if e.decoded&2 == 0 {
		e.decoded |= 2
		e.resp = decodeObject(e.ResponseObject)
	}
	return e.resp
}

// Object returns the object the request resulted in: the response object
// when it is one (not a Status), else the request object. For a patch it
// is the patched object, where the request holds only the patch.
func (e *Event) Object() any {
	if e.decoded&8 != 0 {
		return e.obj
	}
	e.decoded |= 8
	e.obj = e.Request()
	if m, ok := e.Response().(map[string]any); ok {
		if k, _ := m["kind"].(string); k != "" && k != "Status" {
			e.obj = m
		}
	}
	return e.obj
}

// PodSpec returns the pod spec inside the request: a Pod's spec, a
// workload's spec.template.spec, a CronJob's job template's; else an
// empty map.
func (e *Event) PodSpec() any {
	if e.decoded&4 != 0 {
		return e.spec
	}
	e.decoded |= 4
	e.spec, e.containers = emptyObject, []any{}
	obj, _ := e.Object().(map[string]any)
	if obj == nil {
		return e.spec
	}
	var spec map[string]any
	switch kind, _ := obj["kind"].(string); kind {
	case "Pod":
		spec = dig(obj, "spec")
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController":
		spec = dig(obj, "spec", "template", "spec")
	case "CronJob":
		spec = dig(obj, "spec", "jobTemplate", "spec", "template", "spec")
	}
	if spec == nil {
		return e.spec
	}
	e.spec = spec
	for _, k := range []string{"initContainers", "containers", "ephemeralContainers"} {
		if cs, ok := spec[k].([]any); ok {
			e.containers = append(e.containers, cs...)
		}
	}
	return e.spec
}

func dig(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func decodeObject(u *runtime.Unknown) any {
	if u == nil {
		return emptyObject
	}
	raw := u.Raw
	if len(raw) == 0 {
		return emptyObject
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&v); err != nil || v == nil {
		return emptyObject
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// serviceAccountNamespace returns ns of "system:serviceaccount:ns:name".
func serviceAccountNamespace(user string) string {
	rest, ok := strings.CutPrefix(user, "system:serviceaccount:")
	if !ok {
		return ""
	}
	ns, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return ns
}

// Subject implements detect.Event.
func (e *Event) Subject() detect.Subject {
	s := detect.Subject{Time: e.Time(), Cluster: e.Cluster, Actor: detect.Actor{
		User: e.User.Username, UID: e.User.UID, Groups: e.User.Groups,
		SourceIPs: e.SourceIPs, UserAgent: e.UserAgent,
	}}
	if e.ImpersonatedUser != nil {
		s.Actor.Impersonator = e.User.Username
		s.Actor.User, s.Actor.UID, s.Actor.Groups = e.ImpersonatedUser.Username, e.ImpersonatedUser.UID, e.ImpersonatedUser.Groups
	}
	if r := e.ObjectRef; r != nil {
		s.Namespace = r.Namespace
		parts := []string{r.Resource}
		if r.Name != "" {
			parts = append(parts, r.Name)
		}
		if r.Subresource != "" {
			parts = append(parts, r.Subresource)
		}
		s.Resource = strings.Join(parts, "/")
		if r.APIGroup != "" {
			s.Resource = r.APIGroup + ":" + s.Resource
		}
	} else {
		s.Resource = e.RequestURI
	}
	return s
}

// Evidence implements detect.Event: the event with large request and
// response objects replaced by their size, and managed fields dropped.
func (e *Event) Evidence() json.RawMessage {
	ev := e.Event
	ev.RequestObject = trimObject(ev.RequestObject)
	ev.ResponseObject = trimObject(ev.ResponseObject)
	b, err := json.Marshal(&ev)
	if err != nil {
		return nil
	}
	return b
}
