package testenv

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// event is the part of a distribution notification event the tests read.
type event struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Method string `json:"method"`
	} `json:"request"`
}

// eventSink receives notification envelopes and passes each event on.
func eventSink(t *testing.T) (string, <-chan event, <-chan http.Header) {
	t.Helper()
	events := make(chan event, 100)
	headers := make(chan http.Header, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Events []event `json:"events"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &env); err != nil {
			t.Errorf("notification body: %v: %s", err, b)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/vnd.docker.distribution.events.v2+json" {
			t.Errorf("notification Content-Type = %q", ct)
		}
		select {
		case headers <- r.Header.Clone():
		default:
		}
		for _, e := range env.Events {
			events <- e
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, events, headers
}

// waitEvent returns the first event with the action for a manifest.
func waitEvent(t *testing.T, events <-chan event, action string) event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Action == action && e.Target.Tag != "" || e.Action == action && isManifest(e.Target.MediaType) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event for a manifest within 30s", action)
		}
	}
}

func isManifest(mt string) bool {
	return mt == "application/vnd.oci.image.manifest.v1+json" || mt == "application/vnd.docker.distribution.manifest.v2+json"
}

func TestRegistryPushPullNotify(t *testing.T) {
	url, events, headers := eventSink(t)
	reg := Registry(t, WithRegistryNotifications("bulwark", url, http.Header{"Authorization": {"Bearer s3cret"}}))

	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("team/app", "v1")
	digest := reg.Push(t, ref, img)

	got := reg.Pull(t, ref)
	gotDigest, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if gotDigest != digest {
		t.Fatalf("pulled digest %s, pushed %s", gotDigest, digest)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("pulled %d layers (%v), want 3", len(layers), err)
	}
	// Read a layer through, so its blob is really served and verified.
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("read layer: %v", err)
	}
	rc.Close()

	push := waitEvent(t, events, "push")
	if push.Target.Repository != "team/app" || push.Target.Digest != digest.String() || push.Target.Tag != "v1" {
		t.Errorf("push event target = %+v, want team/app@%s tag v1", push.Target, digest)
	}
	if push.ID == "" || push.Request.Method != http.MethodPut {
		t.Errorf("push event id %q method %q", push.ID, push.Request.Method)
	}
	if h := <-headers; h.Get("Authorization") != "Bearer s3cret" {
		t.Errorf("notification Authorization header = %q", h.Get("Authorization"))
	}
	pull := waitEvent(t, events, "pull")
	if pull.Target.Repository != "team/app" || pull.Target.Digest != digest.String() {
		t.Errorf("pull event target = %+v", pull.Target)
	}
}

func TestRegistryHtpasswdTLS(t *testing.T) {
	reg := Registry(t, WithRegistryTLS(nil), WithRegistryHtpasswd("alice", "wonderland"))
	if reg.URL[:8] != "https://" {
		t.Fatalf("URL %s, want https", reg.URL)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("private/app", "latest")
	reg.Push(t, ref, img)
	reg.Pull(t, ref)

	tag, _ := name.ParseReference(ref)
	for _, tc := range []struct {
		name string
		auth authn.Authenticator
	}{
		{"anonymous", authn.Anonymous},
		{"wrong password", &authn.Basic{Username: "alice", Password: "nope"}},
	} {
		_, err := remote.Image(tag, remote.WithTransport(reg.Transport()), remote.WithAuth(tc.auth))
		if !isStatus(err, http.StatusUnauthorized) {
			t.Errorf("%s: err = %v, want 401", tc.name, err)
		}
	}
	// Without trusting the testenv CA, TLS fails.
	if _, err := remote.Image(tag, remote.WithAuth(reg.Authenticator())); err == nil {
		t.Error("pull without trusting the CA succeeded")
	}
}

func TestRegistryTokenAuth(t *testing.T) {
	reg := Registry(t, WithRegistryTokenAuth("bob", "builder"))
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("tok/app", "1.0")
	digest := reg.Push(t, ref, img) // basic credentials exchanged for a bearer token
	tag, _ := name.ParseReference(ref)

	// The docker config.json route with an identity token (OAuth2 refresh).
	t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, true))
	got, err := remote.Image(tag, remote.WithTransport(reg.Transport()), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatalf("pull with identity token: %v", err)
	}
	if d, _ := got.Digest(); d != digest {
		t.Errorf("digest %s, want %s", d, digest)
	}
	// A registry token handed over directly.
	tok := reg.Token(t, "repository:tok/app:pull")
	if _, err := remote.Image(tag, remote.WithTransport(reg.Transport()), remote.WithAuth(&authn.Bearer{Token: tok})); err != nil {
		t.Errorf("pull with registry token: %v", err)
	}
	// A token for another repository does not open this one.
	other := reg.Token(t, "repository:other:pull")
	if _, err := remote.Image(tag, remote.WithTransport(reg.Transport()), remote.WithAuth(&authn.Bearer{Token: other})); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("pull with a token for another repository: %v, want 401", err)
	}
	// Wrong password: the token server refuses.
	if _, err := remote.Image(tag, remote.WithTransport(reg.Transport()), remote.WithAuth(&authn.Basic{Username: "bob", Password: "x"})); err == nil {
		t.Error("pull with a wrong password succeeded")
	}
}

func isStatus(err error, code int) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == code
}
