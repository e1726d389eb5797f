package webhook

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/bulwark-sec/bulwark/audit"
)

// Config tunes a Receiver.
type Config struct {
	// Tokens are the bearer tokens accepted (the token of the audit
	// webhook kubeconfig's user).
	Tokens []string
	// ClientCert accepts requests whose TLS client certificate was
	// verified by the server's tls.Config (ClientCAs).
	ClientCert bool
	// Insecure accepts unauthenticated requests (tests, or a sidecar on
	// localhost); Tokens and ClientCert must be empty.
	Insecure bool
	// MaxBodyBytes bounds one batch (default 32 MiB).
	MaxBodyBytes int64
	// MaxQueuedBytes bounds the memory of batches waiting for evaluation
	// (default 256 MiB), counted as decodedFactor times their body size
	// (decoded events take about that much more than their JSON); past
	// it the answer is 429.
	MaxQueuedBytes int64
	// Source names the source in metrics and alerts (default "webhook").
	Source string
	// Sync evaluates each batch before answering, so that 200 means its
	// alerts reached every sink: a batch acknowledged is never lost, even
	// if the process is killed right after. A sink failure answers 503 and
	// the apiserver sends the batch again. Without Sync, 200 means queued
	// in memory: faster to answer, but a killed process loses the queue.
	Sync bool
}

// Handler receives decoded batches, one at a time, in arrival order.
type Handler interface {
	Handle(ctx context.Context, source string, events []*audit.Event) error
	Rejected(ctx context.Context, source, reason string, n int)
}

// ErrNoAuth: the configuration accepts nobody and is not Insecure.
var ErrNoAuth = errors.New("webhook: no bearer token or client certificate configured (set Insecure to accept anyone)")

// Receiver is the webhook endpoint.
type Receiver struct {
	cfg     Config
	h       Handler
	queue   chan queued
	syncMu  sync.Mutex // Sync: batches reach the handler one at a time
	mu      sync.Mutex
	bytes   int64
	closing bool
	done    chan struct{}
	log     *slog.Logger
}

type queued struct {
	events []*audit.Event
	size   int64
}

// New returns a Receiver that hands batches to h once Run is running.
func New(cfg Config, h Handler) (*Receiver, error) {
	if len(cfg.Tokens) == 0 && !cfg.ClientCert && !cfg.Insecure {
		return nil, ErrNoAuth
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = 256 << 20
	}
	if cfg.Source == "" {
		cfg.Source = "webhook"
	}
	return &Receiver{cfg: cfg, h: h, queue: make(chan queued, 4096), done: make(chan struct{}), log: slog.Default()}, nil
}

func (r *Receiver) authorized(req *http.Request) bool {
	if r.cfg.Insecure {
		return true
	}
	if r.cfg.ClientCert && req.TLS != nil && len(req.TLS.VerifiedChains) > 0 {
		return true
	}
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		for _, want := range r.cfg.Tokens {
			if subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
				return true
			}
		}
	}
	return false
}

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an audit.k8s.io/v1 EventList", http.StatusMethodNotAllowed)
		return
	}
	if !r.authorized(req) {
		r.h.Rejected(ctx, r.cfg.Source, "unauthenticated", 1)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if req.ContentLength > r.cfg.MaxBodyBytes {
		r.h.Rejected(ctx, r.cfg.Source, "oversized", 1)
		http.Error(w, fmt.Sprintf("batch larger than %d bytes", r.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	// Reserve the budget before reading, so that many slow uploads cannot
	// hold more than it.
	size := req.ContentLength
	if size < 0 {
		size = r.cfg.MaxBodyBytes
	}
	if !r.reserve(size) {
		r.h.Rejected(ctx, r.cfg.Source, "queue-full", 1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy, retry", http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err != nil {
		r.release(size)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			r.h.Rejected(ctx, r.cfg.Source, "oversized", 1)
			http.Error(w, fmt.Sprintf("batch larger than %d bytes", r.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if int64(len(body)) != size {
		r.release(size - int64(len(body)))
		size = int64(len(body))
	}
	events, err := audit.DecodeEventList(body)
	if err != nil {
		r.release(size)
		reason := "malformed"
		status := http.StatusBadRequest
		if errors.Is(err, audit.ErrTooLarge) {
			reason, status = "oversized", http.StatusRequestEntityTooLarge
		}
		r.h.Rejected(ctx, r.cfg.Source, reason, 1)
		http.Error(w, err.Error(), status)
		return
	}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		r.release(size)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if r.cfg.Sync {
		r.mu.Unlock()
		r.syncMu.Lock()
		// The work is finished even if the sender hangs up meanwhile.
		err := r.h.Handle(context.WithoutCancel(ctx), r.cfg.Source, events)
		r.syncMu.Unlock()
		r.release(size)
		if err != nil {
			r.log.Error("audit webhook batch not delivered; asking the sender to retry", "events", len(events), "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "alerts not delivered, retry", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	select {
	case r.queue <- queued{events: events, size: size}:
		r.mu.Unlock()
	default:
		r.mu.Unlock()
		r.release(size)
		r.h.Rejected(ctx, r.cfg.Source, "queue-full", 1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy, retry", http.StatusTooManyRequests)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// decodedFactor estimates the memory of decoded events per byte of JSON
// (measured with BenchmarkFlood: about 3; 4 leaves room).
const decodedFactor = 4

func (r *Receiver) reserve(n int64) bool {
	n *= decodedFactor
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bytes+n > r.cfg.MaxQueuedBytes {
		return false
	}
	r.bytes += n
	return true
}

func (r *Receiver) release(n int64) {
	n *= decodedFactor
	r.mu.Lock()
	r.bytes -= n
	r.mu.Unlock()
}

// QueuedBytes reports the JSON bytes of batches accepted and not yet evaluated.
func (r *Receiver) QueuedBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes / decodedFactor
}

// Run hands queued batches to the handler until ctx ends; then it refuses
// new batches (503), evaluates those already queued, and returns.
func (r *Receiver) Run(ctx context.Context) error {
	defer close(r.done)
	for {
		select {
		case q := <-r.queue:
			r.handle(ctx, q)
		case <-ctx.Done():
			r.mu.Lock()
			r.closing = true
			r.mu.Unlock()
			drain := context.WithoutCancel(ctx)
			for {
				select {
				case q := <-r.queue:
					r.handle(drain, q)
				default:
					return nil
				}
			}
		}
	}
}

func (r *Receiver) handle(ctx context.Context, q queued) {
	if err := r.h.Handle(ctx, r.cfg.Source, q.events); err != nil && ctx.Err() == nil {
		r.log.Error("audit webhook batch", "events", len(q.events), "err", err)
	}
	r.release(q.size)
}
