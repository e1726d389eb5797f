package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"

	"github.com/bulwark-sec/bulwark/audit"
	"github.com/bulwark-sec/bulwark/audit/cloudwatch"
	"github.com/bulwark-sec/bulwark/audit/logfile"
	"github.com/bulwark-sec/bulwark/audit/webhook"
	"github.com/bulwark-sec/bulwark/detect"
	"github.com/bulwark-sec/bulwark/store"
)

// Config is the serve configuration (YAML).
type Config struct {
	Cluster    string             `yaml:"cluster"`
	Rules      []string           `yaml:"rules"`     // user rule files or directories
	Lists      map[string]string  `yaml:"lists"`     // list name -> file
	StateDir   string             `yaml:"stateDir"`  // positions and baselines
	Fold       time.Duration      `yaml:"fold"`      // fold repeats of an alert within this window (default 1m)
	JSONLines  bool               `yaml:"jsonLines"` // print alerts on stdout
	Metrics    string             `yaml:"metrics"`   // listen address for /metrics, empty for none
	Webhook    *WebhookConfig     `yaml:"webhook"`
	Files      []FileConfig       `yaml:"files"`
	CloudWatch []CloudWatchConfig `yaml:"cloudwatch"`
	// GapAlert is the minimum silence of a source that raises an alert
	// (default 5m; it also scales with the source's usual rhythm).
	GapAlert time.Duration `yaml:"gapAlert"`
	// LagAlert raises an alert when events reach the rules later than this
	// after they happened (default 5m; CloudWatch sources lag by design,
	// so set it above their poll interval).
	LagAlert time.Duration `yaml:"lagAlert"`
}

// WebhookConfig is the audit webhook endpoint.
type WebhookConfig struct {
	Listen       string `yaml:"listen"` // default :8443
	Path         string `yaml:"path"`   // default /audit
	CertFile     string `yaml:"certFile"`
	KeyFile      string `yaml:"keyFile"`
	ClientCAFile string `yaml:"clientCAFile"` // verify the apiserver's client certificate
	TokenFile    string `yaml:"tokenFile"`    // accept this bearer token
	MaxBodyBytes int64  `yaml:"maxBodyBytes"`
	MaxQueued    int64  `yaml:"maxQueuedBytes"`
	// Queue acknowledges batches once queued in memory instead of once
	// their alerts are delivered: faster answers, but a killed process
	// loses what was queued. Off by default.
	Queue bool `yaml:"queue"`
}

// FileConfig is one followed log file.
type FileConfig struct {
	Path   string `yaml:"path"`
	Format string `yaml:"format"` // audit, aks, gke
}

// CloudWatchConfig is one EKS cluster's log group.
type CloudWatchConfig struct {
	LogGroup string        `yaml:"logGroup"`
	Region   string        `yaml:"region"`
	Endpoint string        `yaml:"endpoint"`
	Poll     time.Duration `yaml:"poll"`
}

// LoadConfig reads a YAML configuration; unknown keys are refused.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Deps are the process's outside parts.
type Deps struct {
	Stdout   io.Writer
	Store    store.AlertStore // nil: alerts are not stored
	Registry *prometheus.Registry
	// AWS is the AWS configuration for CloudWatch sources (the default
	// credential chain, loaded by the caller).
	AWS    *aws.Config
	Logger *slog.Logger
	// Ready is called with the webhook's address once it listens.
	Ready func(webhook net.Addr)
}

// Run serves until ctx ends, then drains what sources accepted, saves
// positions and baselines, and returns.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if cfg.StateDir == "" {
		return errors.New("config: stateDir is required (positions and baselines live there)")
	}
	if cfg.Webhook == nil && len(cfg.Files) == 0 && len(cfg.CloudWatch) == 0 {
		return errors.New("config: no source (webhook, files or cloudwatch)")
	}
	engine, baselines, err := audit.NewEngine(audit.RulesConfig{
		Files: cfg.Rules, Lists: cfg.Lists, Cluster: cfg.Cluster,
		Baselines: filepath.Join(cfg.StateDir, "baselines.json"),
	})
	if err != nil {
		return err
	}
	if cfg.Fold == 0 {
		cfg.Fold = time.Minute
	}
	if cfg.LagAlert == 0 {
		cfg.LagAlert = 5 * time.Minute
	}
	p := &audit.Pipeline{Engine: engine, Cluster: cfg.Cluster, Metrics: audit.NewMetrics(deps.Registry), Logger: deps.Logger,
		Folder: detect.NewFolder(cfg.Fold, 0), LagAlert: cfg.LagAlert}
	if cfg.JSONLines && deps.Stdout != nil {
		p.Sinks = append(p.Sinks, &audit.JSONSink{W: deps.Stdout})
	}
	if deps.Store != nil {
		p.Sinks = append(p.Sinks, &audit.StoreSink{Store: deps.Store, Cluster: cfg.Cluster})
	}
	if len(p.Sinks) == 0 {
		return errors.New("config: alerts go nowhere: set jsonLines or a database")
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	spawn := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	if cfg.Webhook != nil {
		srv, ln, recv, err := newWebhook(cfg.Webhook, p)
		if err != nil {
			return err
		}
		if deps.Ready != nil {
			deps.Ready(ln.Addr())
		}
		deps.Logger.Info("audit webhook listening", "addr", ln.Addr().String(), "path", cfg.Webhook.Path)
		spawn("webhook server", func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		spawn("webhook queue", func() error { return recv.Run(ctx) })
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
			defer c()
			_ = srv.Shutdown(sctx)
		}()
	}
	for i, f := range cfg.Files {
		state := filepath.Join(cfg.StateDir, fmt.Sprintf("file-%d-%s.offset.json", i, filepath.Base(f.Path)))
		fc := logfile.Config{Path: f.Path, Format: f.Format, StatePath: state}
		spawn("file "+f.Path, func() error { return logfile.Follow(ctx, fc, p) })
	}
	for i, c := range cfg.CloudWatch {
		if deps.AWS == nil {
			return errors.New("config: cloudwatch sources need AWS configuration")
		}
		awsCfg := deps.AWS.Copy()
		if c.Region != "" {
			awsCfg.Region = c.Region
		}
		cc := cloudwatch.Config{
			Client: cloudwatch.NewClient(awsCfg, c.Endpoint), LogGroup: c.LogGroup, Poll: c.Poll,
			StatePath: filepath.Join(cfg.StateDir, fmt.Sprintf("cloudwatch-%d.json", i)),
		}
		spawn("cloudwatch "+c.LogGroup, func() error { return cloudwatch.Follow(ctx, cc, p) })
	}
	if cfg.Metrics != "" {
		ms := &http.Server{Addr: cfg.Metrics, Handler: promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		spawn("metrics", func() error {
			if err := ms.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		go func() { <-ctx.Done(); _ = ms.Close() }()
	}
	// Housekeeping: gaps, baselines.
	gap := cfg.GapAlert
	if gap <= 0 {
		gap = 5 * time.Minute
	}
	spawn("housekeeping", func() error {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				p.CheckGaps(ctx, gap)
				if err := baselines.Save(); err != nil {
					deps.Logger.Error("save baselines", "err", err)
				}
			}
		}
	})
	wg.Wait()
	for _, a := range p.Folder.Flush() {
		for _, s := range p.Sinks {
			_ = s.Alert(context.Background(), a)
		}
	}
	if err := baselines.Save(); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func newWebhook(c *WebhookConfig, p *audit.Pipeline) (*http.Server, net.Listener, *webhook.Receiver, error) {
	if c.Listen == "" {
		c.Listen = ":8443"
	}
	if c.Path == "" {
		c.Path = "/audit"
	}
	wc := webhook.Config{MaxBodyBytes: c.MaxBodyBytes, MaxQueuedBytes: c.MaxQueued, Sync: !c.Queue}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, nil, nil, errors.New("webhook: certFile and keyFile are required (the apiserver sends audit events over HTTPS)")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("webhook: %w", err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("webhook: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, nil, fmt.Errorf("webhook: no certificate in %s", c.ClientCAFile)
		}
		tlsCfg.ClientCAs, tlsCfg.ClientAuth, wc.ClientCert = pool, tls.VerifyClientCertIfGiven, true
	}
	if c.TokenFile != "" {
		tok, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("webhook: %w", err)
		}
		wc.Tokens = []string{strings.TrimSpace(string(tok))}
	}
	recv, err := webhook.New(wc, p)
	if err != nil {
		return nil, nil, nil, err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("webhook: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(c.Path, recv)
	srv := &http.Server{Handler: mux, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	return srv, tls.NewListener(ln, tlsCfg), recv, nil
}
