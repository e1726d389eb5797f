package envelope

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/bulwark-sec/bulwark/audit"
)

// maxEnvelope bounds one envelope (an Event Hubs message is at most 1 MiB;
// a storage blob line can be bigger).
const maxEnvelope = 64 << 20

type aksEnvelope struct {
	Records []struct {
		Category   string `json:"category"`
		Properties struct {
			Log string `json:"log"`
		} `json:"properties"`
	} `json:"records"`
}

// DecodeAKS reads an AKS diagnostic-settings envelope and returns the
// audit events of its kube-audit and kube-audit-admin records; records of
// other categories are skipped. A record whose log is not an audit event
// fails the whole envelope with audit.ErrMalformed.
func DecodeAKS(data []byte) ([]*audit.Event, error) {
	if len(data) > maxEnvelope {
		return nil, fmt.Errorf("%w: AKS envelope of %d bytes", audit.ErrTooLarge, len(data))
	}
	var env aksEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: AKS envelope: %w", audit.ErrMalformed, err)
	}
	if env.Records == nil {
		return nil, fmt.Errorf("%w: AKS envelope without records", audit.ErrMalformed)
	}
	var out []*audit.Event
	for i, r := range env.Records {
		if r.Category != "kube-audit" && r.Category != "kube-audit-admin" {
			continue
		}
		ev, err := audit.DecodeEvent([]byte(r.Properties.Log))
		if err != nil {
			return nil, fmt.Errorf("AKS record %d: %w", i, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// gkeEntry is the part of a Cloud Logging LogEntry we read.
type gkeEntry struct {
	InsertID  string            `json:"insertId"`
	Timestamp time.Time         `json:"timestamp"`
	Labels    map[string]string `json:"labels"`
	Operation struct {
		ID    string `json:"id"`
		First bool   `json:"first"`
		Last  bool   `json:"last"`
	} `json:"operation"`
	Resource struct {
		Type   string            `json:"type"`
		Labels map[string]string `json:"labels"`
	} `json:"resource"`
	ProtoPayload *struct {
		Type               string `json:"@type"`
		ServiceName        string `json:"serviceName"`
		MethodName         string `json:"methodName"`
		ResourceName       string `json:"resourceName"`
		AuthenticationInfo struct {
			PrincipalEmail string `json:"principalEmail"`
		} `json:"authenticationInfo"`
		RequestMetadata struct {
			CallerIP                string `json:"callerIp"`
			CallerSuppliedUserAgent string `json:"callerSuppliedUserAgent"`
		} `json:"requestMetadata"`
		Status *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
		Request  json.RawMessage `json:"request"`
		Response json.RawMessage `json:"response"`
	} `json:"protoPayload"`
}

// grpcToHTTP maps google.rpc.Code to the HTTP status the apiserver sent.
var grpcToHTTP = map[int]int32{0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}

// DecodeGKE reads one Cloud Logging entry of a GKE cluster's Kubernetes
// audit log and returns the audit event it describes.
func DecodeGKE(data []byte) (*audit.Event, error) {
	if len(data) > maxEnvelope {
		return nil, fmt.Errorf("%w: GKE entry of %d bytes", audit.ErrTooLarge, len(data))
	}
	var e gkeEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: GKE log entry: %w", audit.ErrMalformed, err)
	}
	p := e.ProtoPayload
	if p == nil || p.ServiceName != "k8s.io" || p.MethodName == "" {
		return nil, fmt.Errorf("%w: GKE log entry is not a Kubernetes audit entry", audit.ErrMalformed)
	}
	ev := auditv1.Event{
		TypeMeta:    metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		Level:       auditv1.LevelRequestResponse,
		Stage:       auditv1.StageResponseComplete,
		User:        authnv1.UserInfo{Username: p.AuthenticationInfo.PrincipalEmail},
		UserAgent:   p.RequestMetadata.CallerSuppliedUserAgent,
		RequestURI:  "/" + p.ResourceName,
		Annotations: map[string]string{},
	}
	ev.AuditID = types.UID(e.Operation.ID)
	if ev.AuditID == "" {
		ev.AuditID = types.UID(e.InsertID)
	}
	if p.RequestMetadata.CallerIP != "" {
		ev.SourceIPs = []string{p.RequestMetadata.CallerIP}
	}
	for k, v := range e.Labels {
		if strings.HasPrefix(k, "authorization.k8s.io/") || strings.Contains(k, ".k8s.io/") {
			ev.Annotations[k] = v
		}
	}
	ev.StageTimestamp = metav1.NewMicroTime(e.Timestamp)
	ev.RequestReceivedTimestamp = ev.StageTimestamp
	code := int32(200)
	if p.Status != nil {
		if c, ok := grpcToHTTP[p.Status.Code]; ok {
			code = c
		}
	}
	ev.ResponseStatus = &metav1.Status{Code: code}
	if p.Status != nil {
		ev.ResponseStatus.Message = p.Status.Message
	}
	ev.Verb, ev.ObjectRef = parseMethod(p.MethodName, p.ResourceName)
	ev.RequestObject = object(p.Request)
	ev.ResponseObject = object(p.Response)
	if e.Resource.Labels["cluster_name"] != "" {
		ev.Annotations["bulwark.dev/cluster"] = e.Resource.Labels["cluster_name"]
	}
	out := audit.NewEvent(ev, e.Resource.Labels["cluster_name"])
	if ev.AuditID == "" || ev.Verb == "" {
		return nil, fmt.Errorf("%w: GKE entry without operation id or verb", audit.ErrMalformed)
	}
	return out, nil
}

// parseMethod reads "io.k8s.core.v1.pods.exec.create" and
// "core/v1/namespaces/dev/pods/web/exec" into a verb and an object
// reference.
func parseMethod(method, resource string) (string, *auditv1.ObjectReference) {
	parts := strings.Split(method, ".")
	verb := parts[len(parts)-1]
	ref := &auditv1.ObjectReference{}
	segs := strings.Split(strings.Trim(resource, "/"), "/")
	if len(segs) < 2 {
		return verb, nil
	}
	group, version := segs[0], segs[1]
	if group == "core" {
		group = ""
	}
	ref.APIGroup, ref.APIVersion = group, version
	rest := segs[2:]
	if len(rest) >= 2 && rest[0] == "namespaces" && len(rest) != 2 {
		ref.Namespace, rest = rest[1], rest[2:]
	}
	if len(rest) > 0 {
		ref.Resource = rest[0]
	}
	if len(rest) > 1 {
		ref.Name = rest[1]
	}
	if len(rest) > 2 {
		ref.Subresource = rest[2]
	}
	if ref.Resource == "namespaces" && ref.Name != "" && ref.Subresource == "" {
		ref.Namespace = ref.Name
	}
	return verb, ref
}

// object turns a protoPayload request/response (JSON with an "@type") into
// a raw Kubernetes object.
func object(raw json.RawMessage) *runtime.Unknown {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	delete(m, "@type")
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return &runtime.Unknown{Raw: b, ContentType: runtime.ContentTypeJSON}
}
