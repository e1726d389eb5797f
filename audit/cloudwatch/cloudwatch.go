package cloudwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/bulwark-sec/bulwark/audit"
	"github.com/bulwark-sec/bulwark/detect"
)

// API is the part of the CloudWatch Logs client used.
type API interface {
	FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// Config says what to read.
type Config struct {
	Client       API
	LogGroup     string // /aws/eks/<cluster>/cluster
	StreamPrefix string // default kube-apiserver-audit
	StatePath    string
	// Start is where to begin without a saved position (default: now).
	Start    time.Time
	Poll     time.Duration // default 10s
	Lookback time.Duration // default 2m
	Source   string        // default "cloudwatch:"+LogGroup
	// Once stops after the first poll that found nothing new.
	Once bool
}

// Handler receives batches.
type Handler interface {
	Handle(ctx context.Context, source string, events []*audit.Event) error
	Rejected(ctx context.Context, source, reason string, n int)
}

// State is the persisted position.
type State struct {
	TimeMillis int64            `json:"timeMillis"`
	Seen       map[string]int64 `json:"seen"` // event id -> timestamp (ms)
}

// ErrConfig: a required setting is missing.
var ErrConfig = errors.New("cloudwatch: Client, LogGroup and StatePath are required")

const maxSeen = 200_000

// Follow polls until ctx ends.
func Follow(ctx context.Context, cfg Config, h Handler) error {
	if cfg.Client == nil || cfg.LogGroup == "" || cfg.StatePath == "" {
		return ErrConfig
	}
	if cfg.StreamPrefix == "" {
		cfg.StreamPrefix = "kube-apiserver-audit"
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Second
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = 2 * time.Minute
	}
	if cfg.Source == "" {
		cfg.Source = "cloudwatch:" + cfg.LogGroup
	}
	st, err := loadState(cfg.StatePath)
	if err != nil {
		return err
	}
	if st.TimeMillis == 0 {
		start := cfg.Start
		if start.IsZero() {
			start = time.Now()
		}
		st.TimeMillis = start.UnixMilli()
	}
	for {
		n, err := poll(ctx, cfg, st, h)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n == 0 && cfg.Once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Poll):
		}
	}
}

// poll reads every page from the position and returns the new events.
func poll(ctx context.Context, cfg Config, st *State, h Handler) (int, error) {
	from := st.TimeMillis - cfg.Lookback.Milliseconds()
	in := &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName:        aws.String(cfg.LogGroup),
		LogStreamNamePrefix: aws.String(cfg.StreamPrefix),
		StartTime:           aws.Int64(from),
	}
	total := 0
	for {
		out, err := cfg.Client.FilterLogEvents(ctx, in)
		if err != nil {
			return total, fmt.Errorf("cloudwatch: FilterLogEvents %s: %w", cfg.LogGroup, err)
		}
		var events []*audit.Event
		bad := 0
		for _, e := range out.Events {
			id, ts := aws.ToString(e.EventId), aws.ToInt64(e.Timestamp)
			if _, seen := st.Seen[id]; seen || id == "" {
				continue
			}
			st.Seen[id] = ts
			st.TimeMillis = max(st.TimeMillis, ts)
			total++
			ev, err := audit.DecodeEvent([]byte(aws.ToString(e.Message)))
			if err != nil {
				bad++
				continue
			}
			events = append(events, ev)
		}
		if len(events) > 0 {
			// A sink that failed is logged and counted by the pipeline; the
			// poller goes on rather than stop the whole source.
			if err := h.Handle(ctx, cfg.Source, events); err != nil && !errors.Is(err, audit.ErrDelivery) {
				return total, err
			}
		}
		if bad > 0 {
			h.Rejected(ctx, cfg.Source, "malformed", bad)
		}
		prune(st, st.TimeMillis-cfg.Lookback.Milliseconds())
		if err := saveState(cfg.StatePath, st); err != nil {
			return total, err
		}
		if out.NextToken == nil || aws.ToString(out.NextToken) == aws.ToString(in.NextToken) {
			return total, nil
		}
		in.NextToken = out.NextToken
	}
}

// prune forgets ids older than the lookback window, and the oldest ones
// past maxSeen.
func prune(st *State, before int64) {
	for id, ts := range st.Seen {
		if ts < before {
			delete(st.Seen, id)
		}
	}
	if len(st.Seen) <= maxSeen {
		return
	}
	type kv struct {
		id string
		ts int64
	}
	all := make([]kv, 0, len(st.Seen))
	for id, ts := range st.Seen {
		all = append(all, kv{id, ts})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ts < all[j].ts })
	for _, x := range all[:len(all)-maxSeen] {
		delete(st.Seen, x.id)
	}
}

func loadState(path string) (*State, error) {
	st := &State{Seen: map[string]int64{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cloudwatch: state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("cloudwatch: state %s: %w", path, err)
	}
	if st.Seen == nil {
		st.Seen = map[string]int64{}
	}
	return st, nil
}

func saveState(path string, st *State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := detect.WriteFileAtomic(path, b); err != nil {
		return fmt.Errorf("cloudwatch: save state: %w", err)
	}
	return nil
}

// NewClient returns a CloudWatch Logs client for region with the default
// credential chain replaced by creds when given, and the endpoint
// overridden when endpoint is not empty (a VPC endpoint, or a test server).
func NewClient(cfg aws.Config, endpoint string) *cloudwatchlogs.Client {
	return cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}
