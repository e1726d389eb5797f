package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bulwark-sec/bulwark/testenv"
)

// BenchmarkAdmissionHTTPS sends b.N AdmissionReviews over HTTPS at 1,000
// per second (paced, concurrent) to the webhook with every built-in check
// in deny mode, and reports the latency percentiles seen by the client.
// Run: go test -run XXX -bench AdmissionHTTPS -benchtime 5000x ./admission/
// Target: p99 <= 5 ms.
func BenchmarkAdmissionHTTPS(b *testing.B) {
	objs, err := sourceFiles("../check/testdata/cluster.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var bodies [][]byte
	for i, o := range objs {
		raw, _ := json.Marshal(o.Typed)
		req := request(string(raw), func(r *admissionv1.AdmissionRequest) {
			r.UID = types.UID(fmt.Sprint(i))
			r.Namespace, r.Name = "team", o.Ref.Name
		})
		body, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
		bodies = append(bodies, body)
	}
	e, err := NewEngine(Config{})
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{DefaultMode: Deny}, e, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	pki := testenv.NewPKI(b)
	kp := pki.ServingCert(b, "w", "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, ServeConfig{Listener: ln, CertFile: kp.CertFile, KeyFile: kp.KeyFile}, h)
	url := "https://" + ln.Addr().String() + "/validate"
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CertPool()},
		MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	post := func(body []byte) error {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Warm the pool the way the apiserver holds it: many connections kept
	// alive, so that TLS handshakes are not measured as admission latency.
	var warm sync.WaitGroup
	for c := 0; c < 32; c++ {
		warm.Add(1)
		go func(c int) {
			defer warm.Done()
			for i := 0; i < 10; i++ {
				if err := post(bodies[(c+i)%len(bodies)]); err != nil {
					b.Error(err)
					return
				}
			}
		}(c)
	}
	warm.Wait()
	runtime.GC()
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed sync.Once
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t0 := time.Now()
			if err := post(bodies[i%len(bodies)]); err != nil {
				failed.Do(func() { b.Error(err) })
			}
			lat[i] = time.Since(t0)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reviews/s")
}
