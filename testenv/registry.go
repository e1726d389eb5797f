package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Storage and auth drivers register themselves with distribution's
	// factories when imported, as in distribution's own registry binary.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// RegistryServer is a running CNCF distribution registry (the code of
// distribution/distribution v3, the "registry:3" image), in this process,
// storing blobs on disk in a temporary directory.
type RegistryServer struct {
	// Addr is host:port, the registry part of image references.
	Addr string
	// URL is the base URL, http:// or https://.
	URL string
	// PKI signed the serving certificate, when WithRegistryTLS was given.
	PKI *PKI
	// Username and Password are accepted by the registry (htpasswd) or by
	// its token server (token auth), when auth is on.
	Username, Password string
	// IdentityToken is a refresh token the token server accepts in an
	// OAuth2 grant (docker config.json "identitytoken"), when token auth is on.
	IdentityToken string
	// TokenRealm is the token server's URL, when token auth is on.
	TokenRealm string

	dir    string
	tokens *tokenServer
}

type registryOptions struct {
	pki           *PKI
	tls           bool
	htpasswd      bool
	token         bool
	user, pass    string
	endpoints     []configuration.Endpoint
	includeRefs   bool
	storageDir    string
	notifyBackoff time.Duration
}

// RegistryOption configures Registry.
type RegistryOption func(*registryOptions)

// WithRegistryTLS serves HTTPS with a certificate for 127.0.0.1 and
// localhost signed by p (a new PKI when p is nil); clients trust p.CertPool().
func WithRegistryTLS(p *PKI) RegistryOption {
	return func(o *registryOptions) { o.tls, o.pki = true, p }
}

// WithRegistryHtpasswd requires HTTP basic auth for every request, checked
// by distribution's htpasswd access controller against one bcrypt entry.
func WithRegistryHtpasswd(user, password string) RegistryOption {
	return func(o *registryOptions) { o.htpasswd, o.user, o.pass = true, user, password }
}

// WithRegistryTokenAuth turns on distribution's token access controller
// (the Docker registry token protocol): the registry answers 401 with a
// Bearer challenge that points at a token server started beside it, which
// issues ES256-signed JWTs with the requested repository scopes to user
// (basic auth on GET) or to holders of the identity token (OAuth2 POST).
func WithRegistryTokenAuth(user, password string) RegistryOption {
	return func(o *registryOptions) { o.token, o.user, o.pass = true, user, password }
}

// WithRegistryNotifications sends distribution's notification events (push,
// pull, mount, delete; envelope media type
// application/vnd.docker.distribution.events.v2+json) to url, with the
// given extra headers (e.g. Authorization), as a notifications endpoint
// named name. Failed deliveries are retried every 200ms.
func WithRegistryNotifications(name, url string, headers http.Header) RegistryOption {
	return func(o *registryOptions) {
		o.endpoints = append(o.endpoints, configuration.Endpoint{
			Name: name, URL: url, Headers: headers,
			Timeout: 5 * time.Second, Threshold: 3, Backoff: 200 * time.Millisecond,
		})
	}
}

// WithRegistryEventReferences includes manifest references (layers,
// config) in manifest events (notifications.events.includereferences).
func WithRegistryEventReferences() RegistryOption {
	return func(o *registryOptions) { o.includeRefs = true }
}

// WithRegistryStorageDir keeps the registry's blobs in dir (e.g. to restart
// a registry on the same content); by default a fresh temporary directory.
func WithRegistryStorageDir(dir string) RegistryOption {
	return func(o *registryOptions) { o.storageDir = dir }
}

var quietLogrus sync.Once

// tokenPath is where the token server answers, on the registry's host.
const tokenPath = "/bulwark-testenv/token"

// Registry starts a CNCF distribution registry on 127.0.0.1 and a free port,
// plain HTTP unless WithRegistryTLS, stopped at cleanup.
//
// It runs in-process: handlers.NewApp (the same application the registry
// binary serves) behind a net/http server on a listener we open, with the
// filesystem storage driver. In-process needs no separate build or cached
// binary, starts in milliseconds, and lets every test have its own registry;
// we skip distribution's registry.NewRegistry wrapper because it installs
// process-wide signal handlers and OpenTelemetry exporters.
func Registry(t testing.TB, opts ...RegistryOption) *RegistryServer {
	t.Helper()
	var o registryOptions
	for _, opt := range opts {
		opt(&o)
	}
	quietLogrus.Do(func() {
		// distribution logs through logrus' global logger, every 404 as an
		// error; keep it quiet unless BULWARK_TESTENV_REGISTRY_DEBUG is set.
		if os.Getenv("BULWARK_TESTENV_REGISTRY_DEBUG") == "" {
			logrus.SetOutput(io.Discard)
		} else {
			logrus.SetLevel(logrus.DebugLevel)
		}
	})

	dir := workDir(t, "bulwark-registry-")
	storage := o.storageDir
	if storage == "" {
		storage = filepath.Join(dir, "storage")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registry: listen: %v", err)
	}
	r := &RegistryServer{Addr: ln.Addr().String(), dir: dir, Username: o.user, Password: o.pass}

	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	cfg := &configuration.Configuration{
		Version: "0.1",
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": storage},
			"delete":     configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
			},
		},
	}
	cfg.HTTP.Addr = r.Addr
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.Log.Level = "warn"
	cfg.Notifications.Endpoints = o.endpoints
	cfg.Notifications.EventConfig.IncludeReferences = o.includeRefs

	switch {
	case o.htpasswd && o.token:
		t.Fatal("registry: choose htpasswd or token auth, not both")
	case o.htpasswd:
		hash, err := bcrypt.GenerateFromPassword([]byte(o.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(o.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "bulwark-testenv", "path": path}}
	case o.token:
		scheme := "http"
		if o.tls {
			scheme = "https"
		}
		// The realm is on the registry's own host:port, as Harbor does it:
		// go-containerregistry refuses realms on other private addresses.
		ts, err := newTokenServer(o.user, o.pass, dir, scheme+"://"+r.Addr+tokenPath)
		if err != nil {
			t.Fatalf("registry: token server: %v", err)
		}
		r.tokens, r.TokenRealm, r.IdentityToken = ts, ts.realm, ts.identityToken
		cfg.Auth = configuration.Auth{"token": configuration.Parameters{
			"realm":   ts.realm,
			"service": ts.service,
			"issuer":  ts.issuer,
			"jwks":    ts.jwksPath,
		}}
	}

	app := handlers.NewApp(context.Background(), cfg)
	var handler http.Handler = app
	if r.tokens != nil {
		mux := http.NewServeMux()
		mux.Handle("/", app)
		mux.HandleFunc(tokenPath, r.tokens.serveHTTP)
		handler = mux
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	scheme := "http"
	if o.tls {
		if o.pki == nil {
			o.pki = NewPKI(t)
		}
		r.PKI = o.pki
		srv.TLSConfig = o.pki.ServerTLS(t)
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	r.URL = scheme + "://" + r.Addr
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Logf("registry: serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		// Close, not Shutdown: a client's half-open connection (go-containerregistry
		// tries http and https at once on loopback) would hold Shutdown 5s.
		_ = srv.Close()
		<-done
		_ = app.Shutdown()
	})

	// Ready when /v2/ answers (200 or 401 with auth on).
	client := r.HTTPClient()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(r.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				break
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// HTTPClient returns a client that trusts the registry's certificate.
func (r *RegistryServer) HTTPClient() *http.Client {
	return &http.Client{Transport: r.Transport(), Timeout: 30 * time.Second}
}

// Transport returns an HTTP transport that trusts the registry's (and its
// token server's) certificate when TLS is on.
func (r *RegistryServer) Transport() http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.PKI != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.PKI.CertPool(), MinVersion: tls.VersionTLS12}
	}
	return tr
}

// Authenticator returns the registry's credentials for go-containerregistry
// (anonymous when auth is off).
func (r *RegistryServer) Authenticator() authn.Authenticator {
	if r.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.Username, Password: r.Password}
}

// RemoteOptions returns go-containerregistry remote options that reach this
// registry: its transport and credentials.
func (r *RegistryServer) RemoteOptions() []remote.Option {
	return []remote.Option{remote.WithTransport(r.Transport()), remote.WithAuth(r.Authenticator())}
}

// Ref returns the reference "host:port/repo:tag" (or "@digest" when tag
// starts with "sha256:").
func (r *RegistryServer) Ref(repo, tag string) string {
	if strings.HasPrefix(tag, "sha256:") {
		return r.Addr + "/" + repo + "@" + tag
	}
	return r.Addr + "/" + repo + ":" + tag
}

// Push writes img to ref (see Ref) with the registry's credentials and
// returns the manifest digest.
func (r *RegistryServer) Push(t testing.TB, ref string, img v1.Image) v1.Hash {
	t.Helper()
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := remote.Write(tag, img, r.RemoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushIndex writes an image index (multi-platform image) to ref.
func (r *RegistryServer) PushIndex(t testing.TB, ref string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := remote.WriteIndex(tag, idx, r.RemoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Pull reads the image at ref back with the registry's credentials.
func (r *RegistryServer) Pull(t testing.TB, ref string) v1.Image {
	t.Helper()
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	img, err := remote.Image(tag, r.RemoteOptions()...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// DockerConfig writes a docker config.json in a new directory (for
// DOCKER_CONFIG) holding the registry's credentials ("auth", base64
// user:password) and returns the directory. With token auth and
// identity set, it stores the identity token instead of the password.
func (r *RegistryServer) DockerConfig(t testing.TB, identity bool) string {
	t.Helper()
	entry := map[string]string{}
	switch {
	case identity && r.IdentityToken != "":
		entry["auth"] = base64.StdEncoding.EncodeToString([]byte("<token>:"))
		entry["identitytoken"] = r.IdentityToken
	case r.Username != "":
		entry["auth"] = base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))
	}
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{r.Addr: entry}})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Token mints a registry bearer token for scopes such as
// "repository:app:pull" directly (token auth only), as a CI system would
// hand one to a scanner (docker config.json "registrytoken").
func (r *RegistryServer) Token(t testing.TB, scopes ...string) string {
	t.Helper()
	if r.tokens == nil {
		t.Fatal("registry: Token needs WithRegistryTokenAuth")
	}
	tok, err := r.tokens.mint(r.Username, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenServer implements the issuing side of the Docker registry token
// protocol, which distribution does not ship (Harbor, GitLab and
// docker_auth do): GET with basic auth, or an OAuth2 POST, returns a JWT
// the registry's token access controller verifies against our JWKS.
type tokenServer struct {
	user, pass     string
	identityToken  string
	realm, service string
	issuer         string
	jwksPath       string
	key            *ecdsa.PrivateKey
	kid            string
	signer         jose.Signer
}

func newTokenServer(user, pass, dir, realm string) (*tokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	idt := make([]byte, 16)
	_, _ = rand.Read(idt)
	ts := &tokenServer{
		user: user, pass: pass, identityToken: hex.EncodeToString(idt), realm: realm,
		service: "bulwark-testenv-registry", issuer: "bulwark-testenv-token-server",
		key: key, kid: "bulwark-testenv",
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: ts.kid, Algorithm: string(jose.ES256), Use: "sig"}}}
	b, err := json.Marshal(jwks)
	if err != nil {
		return nil, err
	}
	ts.jwksPath = filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(ts.jwksPath, b, 0o600); err != nil {
		return nil, err
	}
	ts.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), ts.kid))
	if err != nil {
		return nil, err
	}
	return ts, nil
}

func (ts *tokenServer) serveHTTP(w http.ResponseWriter, req *http.Request) {
	var subject string
	var scopes []string
	switch req.Method {
	case http.MethodGet:
		u, p, ok := req.BasicAuth()
		if !ok || u != ts.user || p != ts.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="bulwark-testenv-token"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
			return
		}
		subject = u
		scopes = req.URL.Query()["scope"]
	case http.MethodPost:
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ok := false
		switch req.PostForm.Get("grant_type") {
		case "refresh_token":
			ok = req.PostForm.Get("refresh_token") == ts.identityToken
		case "password":
			ok = req.PostForm.Get("username") == ts.user && req.PostForm.Get("password") == ts.pass
		}
		if !ok {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
			return
		}
		subject = ts.user
		for _, s := range req.PostForm["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	tok, err := ts.mint(subject, scopes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": 300,
		"issued_at": time.Now().UTC().Format(time.RFC3339), "refresh_token": ts.identityToken,
	})
}

type resourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// mint signs a token granting every requested action (scope syntax
// "type:name:action,action"); the user is the only one, with all rights.
func (ts *tokenServer) mint(subject string, scopes []string) (string, error) {
	var access []resourceActions
	for _, s := range scopes {
		i, j := strings.Index(s, ":"), strings.LastIndex(s, ":")
		if i < 0 || i == j {
			continue
		}
		access = append(access, resourceActions{Type: s[:i], Name: s[i+1 : j], Actions: strings.Split(s[j+1:], ",")})
	}
	now := time.Now()
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	claims := struct {
		jwt.Claims
		Access []resourceActions `json:"access"`
	}{
		Claims: jwt.Claims{
			Issuer: ts.issuer, Subject: subject, Audience: jwt.Audience{ts.service},
			Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			IssuedAt: jwt.NewNumericDate(now), ID: hex.EncodeToString(jti),
		},
		Access: access,
	}
	return jwt.Signed(ts.signer).Claims(claims).Serialize()
}
