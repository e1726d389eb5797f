-- Hardening results of continuous assessment: the current failures of each object.
CREATE TABLE hardening_results (
    cluster_id TEXT NOT NULL,
    object_key TEXT NOT NULL,
    kind       TEXT NOT NULL,
    namespace  TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL,
    check_id   TEXT NOT NULL,
    container  TEXT NOT NULL DEFAULT '',
    field      TEXT NOT NULL DEFAULT '',
    severity   INTEGER NOT NULL,
    title      TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL DEFAULT '',
    fix        TEXT NOT NULL DEFAULT '',
    detail     JSONB,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX hardening_results_object ON hardening_results (cluster_id, object_key);
CREATE INDEX hardening_results_severity ON hardening_results (cluster_id, severity);
