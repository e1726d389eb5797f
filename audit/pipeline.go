package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-sec/bulwark/detect"
	"github.com/bulwark-sec/bulwark/severity"
	"github.com/bulwark-sec/bulwark/store"
)

// Sink receives alerts.
type Sink interface {
	// Alert delivers one alert. An error is logged and counted; the
	// pipeline goes on with the next sink.
	Alert(ctx context.Context, a detect.Alert) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, a detect.Alert) error

// Alert implements Sink.
func (f SinkFunc) Alert(ctx context.Context, a detect.Alert) error { return f(ctx, a) }

// JSONSink writes each alert as one JSON line.
type JSONSink struct {
	mu sync.Mutex
	W  io.Writer
}

// Alert implements Sink.
func (s *JSONSink) Alert(_ context.Context, a detect.Alert) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.W.Write(append(b, '\n'))
	return err
}

// StoreSink records alerts in a store, which de-duplicates them by
// cluster and dedupe key.
type StoreSink struct {
	Store   store.AlertStore
	Cluster string
}

// Alert implements Sink.
func (s *StoreSink) Alert(ctx context.Context, a detect.Alert) error {
	rec, err := a.Record(s.Cluster)
	if err != nil {
		return err
	}
	_, _, err = s.Store.RecordAlert(ctx, rec)
	return err
}

// Metrics are the pipeline-health metrics, per source.
type Metrics struct {
	Events   *prometheus.CounterVec   // bulwark_audit_events_total{source}
	Rejected *prometheus.CounterVec   // bulwark_audit_rejected_total{source,reason}
	Lag      *prometheus.HistogramVec // bulwark_audit_lag_seconds{source}
	LastSeen *prometheus.GaugeVec     // bulwark_audit_last_event_timestamp_seconds{source}
	Alerts   *prometheus.CounterVec   // bulwark_audit_alerts_total{rule,severity}
	SinkErrs *prometheus.CounterVec   // bulwark_audit_sink_errors_total
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_audit_events_total", Help: "Audit events evaluated, by source."}, []string{"source"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_audit_rejected_total", Help: "Audit batches or lines rejected or dropped, by source and reason."}, []string{"source", "reason"}),
		Lag:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bulwark_audit_lag_seconds", Help: "Time from an audit event's stage timestamp to its evaluation.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, []string{"source"}),
		LastSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bulwark_audit_last_event_timestamp_seconds", Help: "When the last audit event of a source was evaluated."}, []string{"source"}),
		Alerts:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_audit_alerts_total", Help: "Alerts raised, by rule and severity."}, []string{"rule", "severity"}),
		SinkErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_audit_sink_errors_total", Help: "Alerts a sink failed to deliver."}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.Events, m.Rejected, m.Lag, m.LastSeen, m.Alerts, m.SinkErrs)
	}
	return m
}

// Pipeline evaluates events from sources and hands alerts to sinks. It
// also watches the sources' health: a source that falls silent for much
// longer than its usual rhythm, or rejects input, raises an alert.
type Pipeline struct {
	Engine  *detect.Engine
	Sinks   []Sink
	Folder  *detect.Folder // nil: no folding
	Metrics *Metrics       // nil: NewMetrics(nil)
	Cluster string
	Logger  *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// LagAlert raises a pipeline alert when events of a batch reach the
	// rules later than this after they happened (0: never; replays of old
	// logs leave it off).
	LagAlert time.Duration

	mu      sync.Mutex
	sources map[string]*sourceHealth
}

type sourceHealth struct {
	last     time.Time     // wall time of the last batch
	interval time.Duration // smoothed interval between batches
	batches  int
	gapAlert bool
}

func (p *Pipeline) init() {
	if p.Metrics == nil {
		p.Metrics = NewMetrics(nil)
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.sources == nil {
		p.sources = map[string]*sourceHealth{}
	}
}

// Handle evaluates a batch of events from source and delivers the alerts.
// It is safe for concurrent use; sources call it.
func (p *Pipeline) Handle(ctx context.Context, source string, events []*Event) error {
	p.mu.Lock()
	p.init()
	now := p.Now()
	h := p.sources[source]
	if h == nil {
		h = &sourceHealth{}
		p.sources[source] = h
	}
	if !h.last.IsZero() {
		gap := now.Sub(h.last)
		if h.interval == 0 {
			h.interval = gap
		} else {
			h.interval = (h.interval*7 + gap) / 8
		}
	}
	h.last, h.gapAlert = now, false
	h.batches++
	p.mu.Unlock()

	m := p.Metrics
	var worst time.Duration
	var errs []error
	for _, ev := range events {
		if ev.Cluster == "" {
			ev.Cluster = p.Cluster
		}
		m.Events.WithLabelValues(source).Inc()
		if t := ev.Time(); !t.IsZero() {
			lag := now.Sub(t)
			worst = max(worst, lag)
			m.Lag.WithLabelValues(source).Observe(lag.Seconds())
		}
		if ev.Stage == "RequestReceived" {
			continue // the same request comes again with its outcome
		}
		for _, a := range p.Engine.Evaluate(ev) {
			errs = append(errs, p.deliver(ctx, a))
		}
	}
	m.LastSeen.WithLabelValues(source).Set(float64(now.Unix()))
	if p.LagAlert > 0 && worst > p.LagAlert {
		errs = append(errs, p.deliver(ctx, p.healthAlert("AUD-PIPELINE-LAG", "Audit events arrive late", severity.Medium, source,
			fmt.Sprintf("events from %s reached the rules %s after they happened (limit %s)", source, worst.Round(time.Second), p.LagAlert), now)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	return ctx.Err()
}

// ErrDelivery: Handle evaluated the batch but a sink failed to take one of
// its alerts; a source that can have its input sent again should refuse it.
var ErrDelivery = errors.New("audit: alert delivery failed")

// deliver hands an alert to every sink and returns their errors.
func (p *Pipeline) deliver(ctx context.Context, a detect.Alert) error {
	if p.Folder != nil {
		var ok bool
		if a, ok = p.Folder.Fold(a); !ok {
			return nil
		}
	}
	p.Metrics.Alerts.WithLabelValues(a.RuleID, a.Severity.String()).Inc()
	var errs []error
	for i, s := range p.Sinks {
		if err := s.Alert(ctx, a); err != nil {
			p.Metrics.SinkErrs.WithLabelValues(fmt.Sprint(i)).Inc()
			p.Logger.Error("deliver alert", "rule", a.RuleID, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Rejected records input a source refused or lost (a malformed or
// oversized batch, a full queue) and raises a pipeline alert for it.
func (p *Pipeline) Rejected(ctx context.Context, source, reason string, n int) {
	p.mu.Lock()
	p.init()
	now := p.Now()
	p.mu.Unlock()
	p.Metrics.Rejected.WithLabelValues(source, reason).Add(float64(n))
	_ = p.deliver(ctx, p.healthAlert("AUD-PIPELINE-REJECTED", "Audit input rejected or dropped", severity.Medium, source,
		fmt.Sprintf("source %s rejected or dropped %d item(s): %s", source, n, reason), now))
}

// CheckGaps raises an alert for each source silent for longer than
// max(minGap, 10 times its usual interval between batches). Call it
// periodically; a source alerts once per silence.
func (p *Pipeline) CheckGaps(ctx context.Context, minGap time.Duration) {
	p.mu.Lock()
	p.init()
	now := p.Now()
	var due []detect.Alert
	for name, h := range p.sources {
		if h.batches < 3 || h.gapAlert {
			continue
		}
		limit := max(minGap, 10*h.interval)
		if silent := now.Sub(h.last); silent > limit {
			h.gapAlert = true
			due = append(due, p.healthAlert("AUD-PIPELINE-GAP", "Audit source fell silent", severity.High, name,
				fmt.Sprintf("no audit events from %s for %s (usual interval %s): audit logging may have been turned off", name, silent.Round(time.Second), h.interval.Round(time.Millisecond)), now))
		}
	}
	p.mu.Unlock()
	for _, a := range due {
		_ = p.deliver(ctx, a) // logged and counted; a gap alert has no sender to refuse
	}
}

// Health pipeline alerts map to Impair Defenses: an attacker who can turn
// off or flood audit logging blinds detection.
func (p *Pipeline) healthAlert(id, title string, sev severity.Level, source, msg string, now time.Time) detect.Alert {
	return detect.Alert{
		RuleID: id, Title: title, Message: msg, Source: "audit", Severity: sev,
		Tactic: "TA0005", TacticName: "Defense Evasion", Technique: "T1562", TechniqueName: "Impair Defenses",
		Cluster: p.Cluster, Resource: "source/" + source, FirstSeen: now, LastSeen: now, Count: 1,
		DedupeKey: id + ":" + p.Cluster + ":" + source,
	}
}
