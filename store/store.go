package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/bulwark-sec/bulwark/severity"
)

// Errors returned by every implementation; test with errors.Is.
var (
	// ErrNotFound: the record asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrInvalid: the record is missing a required field or has a bad value.
	ErrInvalid = errors.New("store: invalid record")
	// ErrSchemaTooNew: the database was migrated by a newer Bulwark.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
)

// Store is the whole persistence interface. Implementations are safe for
// concurrent use by many goroutines and, for the SQL ones, many processes.
type Store interface {
	ClusterStore
	ImageStore
	ScanStore
	AlertStore
	HardeningStore

	// Ping reports whether the backing database answers.
	Ping(ctx context.Context) error
	// Close releases the database. The Store must not be used afterwards.
	Close() error
}

// Cluster is a Kubernetes cluster that reports to central.
type Cluster struct {
	ID        string            `json:"id"` // chosen at enrollment; stable
	Name      string            `json:"name"`
	Provider  string            `json:"provider,omitempty"` // aks, eks, gke, kind, ...
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	LastSeen  time.Time         `json:"lastSeen"`
}

// ClusterStore keeps clusters.
type ClusterStore interface {
	// UpsertCluster creates the cluster or updates its name, provider,
	// labels and LastSeen. CreatedAt is kept from the first insert. It
	// returns the stored record.
	UpsertCluster(ctx context.Context, c Cluster) (Cluster, error)
	// Cluster returns one cluster or ErrNotFound.
	Cluster(ctx context.Context, id string) (Cluster, error)
	// Clusters lists every cluster ordered by ID.
	Clusters(ctx context.Context) ([]Cluster, error)
}

// Image is a container image, identified by its manifest digest.
type Image struct {
	Digest    string    `json:"digest"` // "sha256:<hex>"
	Name      string    `json:"name"`   // last reference seen: "registry/repo:tag"
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// ImageStore keeps images.
type ImageStore interface {
	// UpsertImage records that an image was seen; Name and LastSeen are
	// updated, FirstSeen is kept. LastSeen never moves backwards.
	UpsertImage(ctx context.Context, img Image) (Image, error)
	// Image returns one image or ErrNotFound.
	Image(ctx context.Context, digest string) (Image, error)
	// Images lists images, most recently seen first.
	Images(ctx context.Context) ([]Image, error)
}

// ScanStatus is where a scan is in its life.
type ScanStatus string

const (
	ScanRunning   ScanStatus = "running"
	ScanSucceeded ScanStatus = "succeeded"
	ScanFailed    ScanStatus = "failed"
)

// Scan is one vulnerability scan of one image.
type Scan struct {
	ID          int64      `json:"id"`
	ImageDigest string     `json:"imageDigest"`
	Status      ScanStatus `json:"status"`
	Error       string     `json:"error,omitempty"`
	// Inventory is the image's package inventory (an SBOM) as JSON, kept so
	// that new advisories re-match without pulling the image again.
	Inventory  json.RawMessage `json:"inventory,omitempty"`
	StartedAt  time.Time       `json:"startedAt"`
	FinishedAt time.Time       `json:"finishedAt,omitzero"`
	Findings   int             `json:"findings"`
}

// Finding is one advisory matched against one installed package.
type Finding struct {
	ScanID       int64          `json:"scanId"`
	ImageDigest  string         `json:"imageDigest"`
	AdvisoryID   string         `json:"advisoryId"`
	Aliases      []string       `json:"aliases,omitempty"`
	Ecosystem    string         `json:"ecosystem"`
	Package      string         `json:"package"`
	Version      string         `json:"version"`
	FixedVersion string         `json:"fixedVersion,omitempty"` // empty: no fix yet
	Severity     severity.Level `json:"severity"`
	Score        float64        `json:"score,omitempty"` // CVSS base score
	Layer        string         `json:"layer,omitempty"` // diffID of the layer that brought it
	Path         string         `json:"path,omitempty"`
	Remediation  string         `json:"remediation,omitempty"`
}

// ScanResult is what a finished scan hands to FinishScan.
type ScanResult struct {
	Inventory json.RawMessage
	Findings  []Finding
	// Err, when set, marks the scan failed; Inventory and Findings are ignored.
	Err error
}

// FindingQuery selects findings. Zero fields do not filter.
type FindingQuery struct {
	ImageDigest string
	// ScanID picks one scan; zero means the latest successful scan of each image.
	ScanID      int64
	MinSeverity severity.Level
	Limit       int
}

// ScanStore keeps scans and their findings.
type ScanStore interface {
	// StartScan records a running scan of an image that UpsertImage stored.
	StartScan(ctx context.Context, imageDigest string) (Scan, error)
	// FinishScan ends a running scan, storing its inventory and findings
	// atomically: readers see all of them or none. Finishing a scan twice
	// returns ErrInvalid.
	FinishScan(ctx context.Context, id int64, res ScanResult) (Scan, error)
	// LatestScan returns the newest successful scan of an image, or ErrNotFound.
	LatestScan(ctx context.Context, imageDigest string) (Scan, error)
	// Findings lists findings by severity (highest first), then advisory and package.
	Findings(ctx context.Context, q FindingQuery) ([]Finding, error)
}

// AlertStatus is what a person decided about an alert.
type AlertStatus string

const (
	AlertOpen      AlertStatus = "open"
	AlertResolved  AlertStatus = "resolved"
	AlertDismissed AlertStatus = "dismissed"
)

// Alert is a detection as stored: the alert model of package detect,
// flattened, with its actor and evidence kept as JSON.
type Alert struct {
	ID        int64           `json:"id"`
	ClusterID string          `json:"clusterId"`
	DedupeKey string          `json:"dedupeKey"`
	Source    string          `json:"source"` // audit, runtime, admission
	RuleID    string          `json:"ruleId"`
	Title     string          `json:"title"`
	Severity  severity.Level  `json:"severity"`
	Tactic    string          `json:"tactic,omitempty"`
	Technique string          `json:"technique,omitempty"`
	Namespace string          `json:"namespace,omitempty"`
	Resource  string          `json:"resource,omitempty"`
	Actor     json.RawMessage `json:"actor,omitempty"`
	Evidence  json.RawMessage `json:"evidence,omitempty"`
	FirstSeen time.Time       `json:"firstSeen"`
	LastSeen  time.Time       `json:"lastSeen"`
	Count     int64           `json:"count"`
	Status    AlertStatus     `json:"status"`
}

// AlertQuery selects alerts. Zero fields do not filter.
type AlertQuery struct {
	ClusterID   string
	Status      AlertStatus
	MinSeverity severity.Level
	Since       time.Time // LastSeen at or after
	Limit       int
}

// AlertStore keeps alerts, deduplicated.
type AlertStore interface {
	// RecordAlert stores an alert. If an open alert with the same ClusterID
	// and DedupeKey exists, it is updated instead: Count grows by the new
	// alert's Count (1 when zero), LastSeen and Evidence take the newer
	// values, FirstSeen is kept. It returns the stored alert and whether it
	// was new.
	RecordAlert(ctx context.Context, a Alert) (Alert, bool, error)
	// Alerts lists alerts, most recently seen first.
	Alerts(ctx context.Context, q AlertQuery) ([]Alert, error)
	// SetAlertStatus changes an alert's status; a later RecordAlert with the
	// same key opens a new alert once this one is no longer open.
	SetAlertStatus(ctx context.Context, id int64, status AlertStatus) error
}

// HardeningResult is one failed hardening check on one spot of one object
// of a cluster, as continuous assessment (posture) keeps it.
type HardeningResult struct {
	ClusterID string `json:"clusterId"`
	// ObjectKey identifies the object in the cluster: "Kind/namespace/name"
	// or "Kind/name".
	ObjectKey string         `json:"objectKey"`
	Kind      string         `json:"kind"`
	Namespace string         `json:"namespace,omitempty"`
	Name      string         `json:"name"`
	CheckID   string         `json:"checkId"`
	Container string         `json:"container,omitempty"`
	Field     string         `json:"field,omitempty"`
	Severity  severity.Level `json:"severity"`
	Title     string         `json:"title"`
	Message   string         `json:"message"`
	Fix       string         `json:"fix,omitempty"`
	// Detail is the whole result (references, techniques) as JSON.
	Detail    json.RawMessage `json:"detail,omitempty"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// HardeningQuery selects hardening results. Zero fields do not filter.
type HardeningQuery struct {
	ClusterID   string
	Namespace   string
	CheckID     string
	MinSeverity severity.Level
	Limit       int
}

// HardeningStore keeps the current hardening results of each object.
type HardeningStore interface {
	// ReplaceHardeningResults replaces, atomically, every result of one
	// object of a cluster with rs (each must carry that ClusterID and
	// ObjectKey); an empty rs removes the object's results.
	ReplaceHardeningResults(ctx context.Context, clusterID, objectKey string, rs []HardeningResult) error
	// HardeningResults lists results by severity (highest first), then
	// object key, check ID, container and field.
	HardeningResults(ctx context.Context, q HardeningQuery) ([]HardeningResult, error)
}
