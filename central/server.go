package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwark-sec/bulwark/store"
	"github.com/bulwark-sec/bulwark/version"
)

// Config is what a Server needs.
type Config struct {
	// Store is where everything is kept. Required. The Server does not close it.
	Store store.Store
	// StoreKind names the store in the API root ("sqlite", "postgres").
	StoreKind string
	// Logger receives structured logs; slog.Default() when nil.
	Logger *slog.Logger
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// after its context ends; 15s when zero.
	ShutdownTimeout time.Duration
}

// Server is the central HTTP server. Create it with New.
type Server struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	handler  http.Handler
	stopping atomic.Bool

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("central: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, registry: prometheus.NewRegistry()}
	s.registerMetrics()
	s.handler = s.routes()
	return s, nil
}

func (s *Server) registerMetrics() {
	info := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "bulwark_build_info",
		Help:        "Build of the running Bulwark: always 1, with the version in labels.",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.Commit, "goversion": info.GoVersion},
	})
	build.Set(1)
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulwark_http_requests_total",
		Help: "HTTP requests served by central, by route, method and status code.",
	}, []string{"route", "method", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bulwark_http_request_duration_seconds",
		Help:    "Time to serve HTTP requests, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route"})
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bulwark_store_up",
		Help: "Whether the store answered its last ping (1) or not (0).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if s.cfg.Store.Ping(ctx) != nil {
			return 0
		}
		return 1
	})
	s.registry.MustRegister(build, s.requests, s.duration, up,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Registry is the server's Prometheus registry, for other components
// running in the same process to add their metrics to /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, s.instrument(pattern, h))
	}
	handle("GET /healthz", http.HandlerFunc(s.healthz))
	handle("GET /readyz", http.HandlerFunc(s.readyz))
	handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	handle("GET /api/v1", http.HandlerFunc(s.apiRoot))
	handle("GET /api/v1/", http.HandlerFunc(s.apiNotFound))
	handle("GET /{$}", http.RedirectHandler("/api/v1", http.StatusFound))
	return mux
}

// Handler serves everything central serves.
func (s *Server) Handler() http.Handler { return s.handler }

// instrument counts and times requests by route pattern (never by raw path,
// which would let a client create unbounded label values).
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		s.requests.WithLabelValues(route, r.Method, fmt.Sprint(rec.code)).Inc()
		s.duration.WithLabelValues(route).Observe(elapsed.Seconds())
		s.log.Debug("http request", "method", r.Method, "path", r.URL.Path, "code", rec.code,
			"duration", elapsed, "remote", r.RemoteAddr)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready while the store answers and the server is not stopping.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.Warn("readiness: store does not answer", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// APIRoot is the document at /api/v1.
type APIRoot struct {
	Name    string       `json:"name"`
	Version version.Info `json:"version"`
	Store   string       `json:"store"`
	Links   Links        `json:"links"`
}

// Links points at the server's other endpoints.
type Links struct {
	Health  string `json:"health"`
	Ready   string `json:"ready"`
	Metrics string `json:"metrics"`
}

func (s *Server) apiRoot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, APIRoot{
		Name:    "bulwark",
		Version: version.Get(),
		Store:   s.cfg.StoreKind,
		Links:   Links{Health: "/healthz", Ready: "/readyz", Metrics: "/metrics"},
	})
}

// APIError is the body of every API error.
type APIError struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, APIError{Error: "no such API resource: " + r.URL.Path, Code: http.StatusNotFound})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Serve serves on ln until ctx ends, then stops accepting, marks itself not
// ready, and waits up to ShutdownTimeout for requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("central listening", "addr", ln.Addr().String(), "store", s.cfg.StoreKind)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	s.log.Info("central shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("central stopped")
	return nil
}
