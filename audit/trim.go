package audit

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// trimObject returns u without metadata.managedFields, or, when still
// larger than maxObjectEvidence, a stub naming its kind and size.
func trimObject(u *runtime.Unknown) *runtime.Unknown {
	if u == nil || len(u.Raw) == 0 {
		return u
	}
	var obj map[string]any
	if err := json.Unmarshal(u.Raw, &obj); err != nil {
		return stub(u, "unparsable")
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return stub(u, "unparsable")
	}
	if len(raw) > maxObjectEvidence {
		return stub(u, fmt.Sprintf("%v %v", obj["apiVersion"], obj["kind"]))
	}
	return &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON}
}

func stub(u *runtime.Unknown, what string) *runtime.Unknown {
	raw, _ := json.Marshal(map[string]any{"bulwarkTrimmed": true, "bytes": len(u.Raw), "object": what})
	return &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON}
}
