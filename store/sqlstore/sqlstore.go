package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bulwark-sec/bulwark/severity"
	"github.com/bulwark-sec/bulwark/store"
)

// Store is a store.Store on a SQL database. Create it with Open.
type Store struct {
	db *sql.DB
	d  dialect
}

var _ store.Store = (*Store)(nil)

// Dialect names the database: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.d.bind(q), args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.bind(q), args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.bind(q), args...)
}

// ts normalises a time for storage: UTC, microseconds (PostgreSQL's
// precision), and now when zero.
func ts(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrInvalid, fmt.Sprintf(format, args...))
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// rawOrNull passes JSON through, or NULL when empty.
func rawOrNull(b json.RawMessage) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, invalid("not valid JSON")
	}
	return string(b), nil
}

// ---- clusters

const clusterCols = "id, name, provider, labels, created_at, last_seen"

func scanCluster(row interface{ Scan(...any) error }) (store.Cluster, error) {
	var c store.Cluster
	var labels []byte
	if err := row.Scan(&c.ID, &c.Name, &c.Provider, &labels, &c.CreatedAt, &c.LastSeen); err != nil {
		return c, err
	}
	if err := json.Unmarshal(labels, &c.Labels); err != nil {
		return c, fmt.Errorf("cluster %s labels: %w", c.ID, err)
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	c.CreatedAt, c.LastSeen = c.CreatedAt.UTC(), c.LastSeen.UTC()
	return c, nil
}

// UpsertCluster implements store.ClusterStore.
func (s *Store) UpsertCluster(ctx context.Context, c store.Cluster) (store.Cluster, error) {
	if c.ID == "" {
		return c, invalid("cluster without an id")
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	labels, err := jsonText(c.Labels)
	if err != nil || c.Labels == nil {
		labels = "{}"
	}
	now := ts(c.LastSeen)
	created := now
	if !c.CreatedAt.IsZero() {
		created = ts(c.CreatedAt)
	}
	return scanCluster(s.queryRow(ctx, `INSERT INTO clusters (`+clusterCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, provider = excluded.provider, labels = excluded.labels,
			last_seen = CASE WHEN excluded.last_seen > clusters.last_seen THEN excluded.last_seen ELSE clusters.last_seen END
		RETURNING `+clusterCols, c.ID, c.Name, c.Provider, labels, created, now))
}

// Cluster implements store.ClusterStore.
func (s *Store) Cluster(ctx context.Context, id string) (store.Cluster, error) {
	c, err := scanCluster(s.queryRow(ctx, "SELECT "+clusterCols+" FROM clusters WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("cluster %q: %w", id, store.ErrNotFound)
	}
	return c, err
}

// Clusters implements store.ClusterStore.
func (s *Store) Clusters(ctx context.Context) ([]store.Cluster, error) {
	rows, err := s.query(ctx, "SELECT "+clusterCols+" FROM clusters ORDER BY id")
	if err != nil {
		return nil, err
	}
	return collect(rows, scanCluster)
}

// ---- images

var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)

const imageCols = "digest, name, first_seen, last_seen"

func scanImage(row interface{ Scan(...any) error }) (store.Image, error) {
	var img store.Image
	err := row.Scan(&img.Digest, &img.Name, &img.FirstSeen, &img.LastSeen)
	img.FirstSeen, img.LastSeen = img.FirstSeen.UTC(), img.LastSeen.UTC()
	return img, err
}

// UpsertImage implements store.ImageStore.
func (s *Store) UpsertImage(ctx context.Context, img store.Image) (store.Image, error) {
	if !digestRE.MatchString(img.Digest) {
		return img, invalid("image digest %q is not algorithm:hex", img.Digest)
	}
	seen := ts(img.LastSeen)
	first := seen
	if !img.FirstSeen.IsZero() {
		first = ts(img.FirstSeen)
	}
	return scanImage(s.queryRow(ctx, `INSERT INTO images (`+imageCols+`) VALUES (?, ?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET
			name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE images.name END,
			last_seen = CASE WHEN excluded.last_seen > images.last_seen THEN excluded.last_seen ELSE images.last_seen END
		RETURNING `+imageCols, img.Digest, img.Name, first, seen))
}

// Image implements store.ImageStore.
func (s *Store) Image(ctx context.Context, digest string) (store.Image, error) {
	img, err := scanImage(s.queryRow(ctx, "SELECT "+imageCols+" FROM images WHERE digest = ?", digest))
	if errors.Is(err, sql.ErrNoRows) {
		return img, fmt.Errorf("image %s: %w", digest, store.ErrNotFound)
	}
	return img, err
}

// Images implements store.ImageStore.
func (s *Store) Images(ctx context.Context) ([]store.Image, error) {
	rows, err := s.query(ctx, "SELECT "+imageCols+" FROM images ORDER BY last_seen DESC, digest")
	if err != nil {
		return nil, err
	}
	return collect(rows, scanImage)
}

// ---- scans and findings

const scanCols = "id, image_digest, status, error, inventory, started_at, finished_at, findings"

func scanScan(row interface{ Scan(...any) error }) (store.Scan, error) {
	var sc store.Scan
	var inv []byte
	var finished sql.NullTime
	if err := row.Scan(&sc.ID, &sc.ImageDigest, &sc.Status, &sc.Error, &inv, &sc.StartedAt, &finished, &sc.Findings); err != nil {
		return sc, err
	}
	if len(inv) > 0 {
		sc.Inventory = json.RawMessage(inv)
	}
	sc.StartedAt = sc.StartedAt.UTC()
	if finished.Valid {
		sc.FinishedAt = finished.Time.UTC()
	}
	return sc, nil
}

// StartScan implements store.ScanStore.
func (s *Store) StartScan(ctx context.Context, digest string) (store.Scan, error) {
	if _, err := s.Image(ctx, digest); err != nil {
		return store.Scan{}, fmt.Errorf("start scan: %w", err)
	}
	return scanScan(s.queryRow(ctx, `INSERT INTO scans (image_digest, status, started_at) VALUES (?, ?, ?)
		RETURNING `+scanCols, digest, store.ScanRunning, ts(time.Time{})))
}

// findingCols are the columns FinishScan writes, in insert order.
const findingCols = "scan_id, image_digest, advisory_id, aliases, ecosystem, package, version, fixed_version, severity, score, layer, path, remediation"

// findingBatch rows per INSERT: 13 parameters each stays far below both
// databases' parameter limits.
const findingBatch = 200

// FinishScan implements store.ScanStore.
func (s *Store) FinishScan(ctx context.Context, id int64, res store.ScanResult) (store.Scan, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Scan{}, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	var digest string
	var status store.ScanStatus
	err = tx.QueryRowContext(ctx, s.d.bind("SELECT image_digest, status FROM scans WHERE id = ?"), id).Scan(&digest, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Scan{}, fmt.Errorf("scan %d: %w", id, store.ErrNotFound)
	} else if err != nil {
		return store.Scan{}, err
	}
	if status != store.ScanRunning {
		return store.Scan{}, invalid("scan %d already %s", id, status)
	}

	now := ts(time.Time{})
	if res.Err != nil {
		_, err = tx.ExecContext(ctx, s.d.bind("UPDATE scans SET status = ?, error = ?, finished_at = ? WHERE id = ?"),
			store.ScanFailed, res.Err.Error(), now, id)
	} else {
		var inv any
		if inv, err = rawOrNull(res.Inventory); err != nil {
			return store.Scan{}, fmt.Errorf("scan %d inventory: %w", id, err)
		}
		if err = s.insertFindings(ctx, tx, id, digest, res.Findings); err != nil {
			return store.Scan{}, fmt.Errorf("scan %d findings: %w", id, err)
		}
		_, err = tx.ExecContext(ctx, s.d.bind("UPDATE scans SET status = ?, inventory = ?, finished_at = ?, findings = ? WHERE id = ?"),
			store.ScanSucceeded, inv, now, len(res.Findings), id)
	}
	if err != nil {
		return store.Scan{}, fmt.Errorf("finish scan %d: %w", id, err)
	}
	sc, err := scanScan(tx.QueryRowContext(ctx, s.d.bind("SELECT "+scanCols+" FROM scans WHERE id = ?"), id))
	if err != nil {
		return sc, err
	}
	return sc, tx.Commit()
}

func (s *Store) insertFindings(ctx context.Context, tx *sql.Tx, scanID int64, digest string, fs []store.Finding) error {
	for start := 0; start < len(fs); start += findingBatch {
		batch := fs[start:min(start+findingBatch, len(fs))]
		var q strings.Builder
		q.WriteString("INSERT INTO findings (" + findingCols + ") VALUES ")
		args := make([]any, 0, len(batch)*13)
		for i, f := range batch {
			if f.AdvisoryID == "" || f.Package == "" {
				return invalid("finding %d has no advisory id or package", start+i)
			}
			aliases, err := jsonText(f.Aliases)
			if err != nil || f.Aliases == nil {
				aliases = "[]"
			}
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, scanID, digest, f.AdvisoryID, aliases, f.Ecosystem, f.Package, f.Version,
				f.FixedVersion, int(f.Severity), f.Score, f.Layer, f.Path, f.Remediation)
		}
		if _, err := tx.ExecContext(ctx, s.d.bind(q.String()), args...); err != nil {
			return err
		}
	}
	return nil
}

// LatestScan implements store.ScanStore.
func (s *Store) LatestScan(ctx context.Context, digest string) (store.Scan, error) {
	sc, err := scanScan(s.queryRow(ctx, "SELECT "+scanCols+" FROM scans WHERE image_digest = ? AND status = ? ORDER BY id DESC LIMIT 1",
		digest, store.ScanSucceeded))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, fmt.Errorf("latest scan of %s: %w", digest, store.ErrNotFound)
	}
	return sc, err
}

func scanFinding(row interface{ Scan(...any) error }) (store.Finding, error) {
	var f store.Finding
	var aliases []byte
	var sev int
	err := row.Scan(&f.ScanID, &f.ImageDigest, &f.AdvisoryID, &aliases, &f.Ecosystem, &f.Package, &f.Version,
		&f.FixedVersion, &sev, &f.Score, &f.Layer, &f.Path, &f.Remediation)
	if err != nil {
		return f, err
	}
	f.Severity = severity.Level(sev)
	if err := json.Unmarshal(aliases, &f.Aliases); err != nil {
		return f, fmt.Errorf("finding %s aliases: %w", f.AdvisoryID, err)
	}
	if len(f.Aliases) == 0 {
		f.Aliases = nil
	}
	return f, nil
}

// Findings implements store.ScanStore.
func (s *Store) Findings(ctx context.Context, q store.FindingQuery) ([]store.Finding, error) {
	var f filter
	if q.ScanID != 0 {
		f.add("scan_id = ?", q.ScanID)
	} else if q.ImageDigest != "" {
		f.add("scan_id IN (SELECT MAX(id) FROM scans WHERE status = ? AND image_digest = ? GROUP BY image_digest)",
			store.ScanSucceeded, q.ImageDigest)
	} else {
		f.add("scan_id IN (SELECT MAX(id) FROM scans WHERE status = ? GROUP BY image_digest)", store.ScanSucceeded)
	}
	f.eq("image_digest", q.ImageDigest)
	f.minSeverity(q.MinSeverity)
	sqlq, args := f.query("SELECT "+findingCols+" FROM findings", "severity DESC, advisory_id, package, image_digest", q.Limit)
	rows, err := s.query(ctx, sqlq, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanFinding)
}

// ---- alerts

const alertCols = "id, cluster_id, dedupe_key, source, rule_id, title, severity, tactic, technique, namespace, resource, actor, evidence, first_seen, last_seen, count, status"

func scanAlert(row interface{ Scan(...any) error }) (store.Alert, error) {
	var a store.Alert
	var sev int
	var actor, evidence []byte
	err := row.Scan(&a.ID, &a.ClusterID, &a.DedupeKey, &a.Source, &a.RuleID, &a.Title, &sev, &a.Tactic, &a.Technique,
		&a.Namespace, &a.Resource, &actor, &evidence, &a.FirstSeen, &a.LastSeen, &a.Count, &a.Status)
	a.Severity = severity.Level(sev)
	if len(actor) > 0 {
		a.Actor = json.RawMessage(actor)
	}
	if len(evidence) > 0 {
		a.Evidence = json.RawMessage(evidence)
	}
	a.FirstSeen, a.LastSeen = a.FirstSeen.UTC(), a.LastSeen.UTC()
	return a, err
}

// RecordAlert implements store.AlertStore.
func (s *Store) RecordAlert(ctx context.Context, a store.Alert) (store.Alert, bool, error) {
	if a.RuleID == "" || a.DedupeKey == "" {
		return a, false, invalid("alert without a rule id or dedupe key")
	}
	if a.Count <= 0 {
		a.Count = 1
	}
	actor, err := rawOrNull(a.Actor)
	if err != nil {
		return a, false, fmt.Errorf("alert actor: %w", err)
	}
	evidence, err := rawOrNull(a.Evidence)
	if err != nil {
		return a, false, fmt.Errorf("alert evidence: %w", err)
	}
	last := ts(a.LastSeen)
	first := last
	if !a.FirstSeen.IsZero() {
		first = ts(a.FirstSeen)
	}
	// The update branch always adds at least 1 to a count of at least 1, so
	// the returned count equals the inserted one only for a new alert.
	got, err := scanAlert(s.queryRow(ctx, `INSERT INTO alerts (cluster_id, dedupe_key, source, rule_id, title, severity,
			tactic, technique, namespace, resource, actor, evidence, first_seen, last_seen, count, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')
		ON CONFLICT (cluster_id, dedupe_key) WHERE status = 'open' DO UPDATE SET
			count = alerts.count + excluded.count,
			severity = CASE WHEN excluded.severity > alerts.severity THEN excluded.severity ELSE alerts.severity END,
			actor = CASE WHEN excluded.last_seen >= alerts.last_seen THEN excluded.actor ELSE alerts.actor END,
			evidence = CASE WHEN excluded.last_seen >= alerts.last_seen THEN excluded.evidence ELSE alerts.evidence END,
			first_seen = CASE WHEN excluded.first_seen < alerts.first_seen THEN excluded.first_seen ELSE alerts.first_seen END,
			last_seen = CASE WHEN excluded.last_seen > alerts.last_seen THEN excluded.last_seen ELSE alerts.last_seen END
		RETURNING `+alertCols,
		a.ClusterID, a.DedupeKey, a.Source, a.RuleID, a.Title, int(a.Severity), a.Tactic, a.Technique,
		a.Namespace, a.Resource, actor, evidence, first, last, a.Count))
	if err != nil {
		return got, false, fmt.Errorf("record alert %s: %w", a.RuleID, err)
	}
	return got, got.Count == a.Count, nil
}

// Alerts implements store.AlertStore.
func (s *Store) Alerts(ctx context.Context, q store.AlertQuery) ([]store.Alert, error) {
	var f filter
	f.eq("cluster_id", q.ClusterID)
	f.eq("status", string(q.Status))
	f.minSeverity(q.MinSeverity)
	if !q.Since.IsZero() {
		f.add("last_seen >= ?", ts(q.Since))
	}
	sqlq, args := f.query("SELECT "+alertCols+" FROM alerts", "last_seen DESC, id DESC", q.Limit)
	rows, err := s.query(ctx, sqlq, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAlert)
}

// SetAlertStatus implements store.AlertStore.
func (s *Store) SetAlertStatus(ctx context.Context, id int64, status store.AlertStatus) error {
	switch status {
	case store.AlertOpen, store.AlertResolved, store.AlertDismissed:
	default:
		return invalid("alert status %q", status)
	}
	res, err := s.exec(ctx, "UPDATE alerts SET status = ? WHERE id = ?", status, id)
	if err != nil {
		// Reopening while another alert with the key is open breaks the
		// unique index: that is the caller's mistake, not a failure.
		if status == store.AlertOpen {
			return invalid("alert %d: another alert with its key is open (%v)", id, err)
		}
		return fmt.Errorf("set alert %d status: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("alert %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// filter builds the WHERE clause of a list query; zero values do not filter.
type filter struct {
	where []string
	args  []any
}

func (f *filter) add(cond string, args ...any) {
	f.where = append(f.where, cond)
	f.args = append(f.args, args...)
}

// eq filters on col = v when v is set.
func (f *filter) eq(col, v string) {
	if v != "" {
		f.add(col+" = ?", v)
	}
}

// minSeverity keeps rows at or above l when l is known.
func (f *filter) minSeverity(l severity.Level) {
	if l > severity.Unknown {
		f.add("severity >= ?", int(l))
	}
}

// query completes selectFrom with the conditions, the order and a limit
// (none when limit <= 0).
func (f *filter) query(selectFrom, orderBy string, limit int) (string, []any) {
	q := selectFrom
	if len(f.where) > 0 {
		q += " WHERE " + strings.Join(f.where, " AND ")
	}
	q += " ORDER BY " + orderBy
	args := f.args
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	return q, args
}

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
