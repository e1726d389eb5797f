package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/bulwark-sec/bulwark/severity"
	"github.com/bulwark-sec/bulwark/store"
)

const hardeningCols = "cluster_id, object_key, kind, namespace, name, check_id, container, field, severity, title, message, fix, detail, updated_at"

func scanHardening(row interface{ Scan(...any) error }) (store.HardeningResult, error) {
	var r store.HardeningResult
	var sev int
	var detail []byte
	err := row.Scan(&r.ClusterID, &r.ObjectKey, &r.Kind, &r.Namespace, &r.Name, &r.CheckID, &r.Container, &r.Field,
		&sev, &r.Title, &r.Message, &r.Fix, &detail, &r.UpdatedAt)
	r.Severity = severity.Level(sev)
	if len(detail) > 0 {
		r.Detail = json.RawMessage(detail)
	}
	r.UpdatedAt = r.UpdatedAt.UTC()
	return r, err
}

// ReplaceHardeningResults implements store.HardeningStore.
func (s *Store) ReplaceHardeningResults(ctx context.Context, clusterID, objectKey string, rs []store.HardeningResult) error {
	if clusterID == "" || objectKey == "" {
		return invalid("hardening results without a cluster or object key")
	}
	for _, r := range rs {
		if r.ClusterID != clusterID || r.ObjectKey != objectKey || r.CheckID == "" || r.Kind == "" {
			return invalid("hardening result %q for %q/%q: cluster, object key, kind and check id must be set and match", r.CheckID, r.ClusterID, r.ObjectKey)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, s.d.bind("DELETE FROM hardening_results WHERE cluster_id = ? AND object_key = ?"), clusterID, objectKey); err != nil {
		return fmt.Errorf("replace hardening results of %s: %w", objectKey, err)
	}
	ins := s.d.bind("INSERT INTO hardening_results (" + hardeningCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	for _, r := range rs {
		detail, err := rawOrNull(r.Detail)
		if err != nil {
			return fmt.Errorf("hardening result %s detail: %w", r.CheckID, err)
		}
		if _, err := tx.ExecContext(ctx, ins, r.ClusterID, r.ObjectKey, r.Kind, r.Namespace, r.Name, r.CheckID, r.Container, r.Field,
			int(r.Severity), r.Title, r.Message, r.Fix, detail, ts(r.UpdatedAt)); err != nil {
			return fmt.Errorf("insert hardening result %s of %s: %w", r.CheckID, objectKey, err)
		}
	}
	return tx.Commit()
}

// HardeningResults implements store.HardeningStore.
func (s *Store) HardeningResults(ctx context.Context, q store.HardeningQuery) ([]store.HardeningResult, error) {
	var f filter
	f.eq("cluster_id", q.ClusterID)
	f.eq("namespace", q.Namespace)
	f.eq("check_id", q.CheckID)
	f.minSeverity(q.MinSeverity)
	sqlq, args := f.query("SELECT "+hardeningCols+" FROM hardening_results", "severity DESC, object_key, check_id, container, field", q.Limit)
	rows, err := s.query(ctx, sqlq, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanHardening)
}
