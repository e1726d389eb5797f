package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/bulwark-sec/bulwark/audit"
	"github.com/bulwark-sec/bulwark/audit/logfile"
	"github.com/bulwark-sec/bulwark/detect"
)

// ReplayConfig is what to replay.
type ReplayConfig struct {
	Path   string // a saved audit log (JSON lines)
	Format string // audit, aks, gke
	Rules  audit.RulesConfig
	NoFold bool // report every alert instead of folding repeats
}

// ReplayResult is the outcome of a replay.
type ReplayResult struct {
	Events   int64          `json:"events"`
	Rejected int            `json:"rejected"`
	Alerts   []detect.Alert `json:"alerts"`
}

type collector struct {
	p        *audit.Pipeline
	events   int64
	rejected int
}

func (c *collector) Handle(ctx context.Context, src string, evs []*audit.Event) error {
	c.events += int64(len(evs))
	return c.p.Handle(ctx, src, evs)
}

func (c *collector) Rejected(_ context.Context, _, _ string, n int) { c.rejected += n }

// Replay evaluates a saved audit log with the rules and returns the alerts,
// repeats folded by dedupe key (count, first and last seen), ordered by
// first seen.
func Replay(ctx context.Context, cfg ReplayConfig) (*ReplayResult, error) {
	engine, _, err := audit.NewEngine(cfg.Rules)
	if err != nil {
		return nil, err
	}
	var alerts []detect.Alert
	byKey := map[string]int{}
	p := &audit.Pipeline{Engine: engine, Cluster: cfg.Rules.Cluster, Sinks: []audit.Sink{audit.SinkFunc(func(_ context.Context, a detect.Alert) error {
		if i, ok := byKey[a.DedupeKey]; ok && !cfg.NoFold {
			prev := &alerts[i]
			prev.Count++
			prev.LastSeen = a.LastSeen
			if len(prev.Evidence) < detect.MaxEvidence {
				prev.Evidence = append(prev.Evidence, a.Evidence...)
			}
			return nil
		}
		byKey[a.DedupeKey] = len(alerts)
		alerts = append(alerts, a)
		return nil
	})}}
	c := &collector{p: p}
	tmp, err := os.MkdirTemp("", "bulwark-replay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := logfile.Follow(ctx, logfile.Config{Path: cfg.Path, Format: cfg.Format, StatePath: filepath.Join(tmp, "state"), Once: true, Source: "replay"}, c); err != nil {
		return nil, err
	}
	sort.SliceStable(alerts, func(i, j int) bool { return alerts[i].FirstSeen.Before(alerts[j].FirstSeen) })
	return &ReplayResult{Events: c.events, Rejected: c.rejected, Alerts: alerts}, nil
}

// WriteJSON writes the result as one JSON document.
func WriteJSON(w io.Writer, r *ReplayResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the alerts as a table, most severe first.
func WriteTable(w io.Writer, r *ReplayResult) error {
	alerts := append([]detect.Alert(nil), r.Alerts...)
	sort.SliceStable(alerts, func(i, j int) bool { return alerts[i].Severity > alerts[j].Severity })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tRULE\tTECHNIQUE\tNAMESPACE\tRESOURCE\tACTOR\tCOUNT\tFIRST SEEN\tMESSAGE")
	for _, a := range alerts {
		msg := a.Message
		if msg == "" {
			msg = a.Title
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", strings.ToUpper(a.Severity.String()), a.RuleID, a.Technique,
			dash(a.Namespace), dash(a.Resource), dash(a.Actor.User), a.Count, a.FirstSeen.UTC().Format("2006-01-02T15:04:05Z"), msg)
	}
	fmt.Fprintf(tw, "\n%d events, %d alerts, %d lines rejected\n", r.Events, len(r.Alerts), r.Rejected)
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
