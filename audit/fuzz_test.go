package audit

import (
	"errors"
	"testing"
)

// FuzzDecodeEvent decodes one audit log line and evaluates every built-in
// rule on it: hostile input must give ErrMalformed/ErrTooLarge or an
// event the rules handle, never a panic.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/d/pods","verb":"create","user":{"username":"u"},"objectRef":{"resource":"pods","namespace":"d","name":"p"},"requestObject":{"kind":"Pod","spec":{"containers":[{"name":"c","securityContext":{"privileged":true}}],"volumes":[{"hostPath":{"path":"/"}}]}},"responseStatus":{"code":201}}`))
	f.Add([]byte(`{"auditID":"1","stage":"ResponseComplete","verb":"update","objectRef":{"resource":"configmaps"},"requestObject":{"kind":"ConfigMap","data":{"password":7}}}`))
	f.Add([]byte(`{"auditID":"1","stage":"x","verb":"get","requestObject":[1,2],"responseObject":"s"}`))
	f.Add([]byte(`{"auditID":"1","stage":"x","verb":"create","requestObject":{"kind":"CronJob","spec":{"jobTemplate":null}}}`))
	f.Add([]byte(`not json`))
	e, _, err := NewEngine(RulesConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		e.Evaluate(ev)
		_ = ev.Evidence()
	})
}

// FuzzDecodeEventList decodes a webhook batch.
func FuzzDecodeEventList(f *testing.F) {
	f.Add([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"auditID":"1","stage":"ResponseComplete","verb":"get","user":{"username":"u"}}]}`))
	f.Add([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":null}`))
	f.Add([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := DecodeEventList(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		for _, ev := range evs {
			if ev.AuditID == "" || ev.Verb == "" {
				t.Fatal("accepted an event without auditID or verb")
			}
		}
	})
}
