-- The first tables: clusters, images, scans, findings, alerts.
CREATE TABLE clusters (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    provider   TEXT NOT NULL DEFAULT '',
    labels     TEXT NOT NULL DEFAULT '{}',
    created_at DATETIME NOT NULL,
    last_seen  DATETIME NOT NULL
);

CREATE TABLE images (
    digest     TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    first_seen DATETIME NOT NULL,
    last_seen  DATETIME NOT NULL
);
CREATE INDEX images_last_seen ON images (last_seen);

CREATE TABLE scans (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    image_digest TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    inventory    TEXT,
    started_at   DATETIME NOT NULL,
    finished_at  DATETIME,
    findings     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX scans_image ON scans (image_digest, status, id);

CREATE TABLE findings (
    scan_id       INTEGER NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    image_digest  TEXT NOT NULL,
    advisory_id   TEXT NOT NULL,
    aliases       TEXT NOT NULL DEFAULT '[]',
    ecosystem     TEXT NOT NULL,
    package       TEXT NOT NULL,
    version       TEXT NOT NULL,
    fixed_version TEXT NOT NULL DEFAULT '',
    severity      INTEGER NOT NULL,
    score         REAL NOT NULL DEFAULT 0,
    layer         TEXT NOT NULL DEFAULT '',
    path          TEXT NOT NULL DEFAULT '',
    remediation   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX findings_scan ON findings (scan_id, severity);
CREATE INDEX findings_advisory ON findings (advisory_id);

CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    source     TEXT NOT NULL,
    rule_id    TEXT NOT NULL,
    title      TEXT NOT NULL,
    severity   INTEGER NOT NULL,
    tactic     TEXT NOT NULL DEFAULT '',
    technique  TEXT NOT NULL DEFAULT '',
    namespace  TEXT NOT NULL DEFAULT '',
    resource   TEXT NOT NULL DEFAULT '',
    actor      TEXT,
    evidence   TEXT,
    first_seen DATETIME NOT NULL,
    last_seen  DATETIME NOT NULL,
    count      INTEGER NOT NULL DEFAULT 1,
    status     TEXT NOT NULL DEFAULT 'open'
);
-- At most one open alert per key: RecordAlert folds repeats into it.
CREATE UNIQUE INDEX alerts_open_key ON alerts (cluster_id, dedupe_key) WHERE status = 'open';
CREATE INDEX alerts_last_seen ON alerts (last_seen);
