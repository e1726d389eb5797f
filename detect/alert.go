package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bulwark-sec/bulwark/severity"
	"github.com/bulwark-sec/bulwark/store"
)

// Alert is one detection: which rule fired, why it matters (severity and
// MITRE mapping), on what (cluster, namespace, resource), by whom (actor),
// and the evidence that triggered it. Repeats of the same alert share a
// DedupeKey; Count, FirstSeen and LastSeen fold them.
type Alert struct {
	RuleID    string         `json:"ruleId"`
	Title     string         `json:"title"`
	Message   string         `json:"message,omitempty"`
	Source    string         `json:"source"` // audit, runtime
	Severity  severity.Level `json:"severity"`
	Tactic    string         `json:"tactic,omitempty"`    // TA0004
	Technique string         `json:"technique,omitempty"` // T1078.003
	// TacticName and TechniqueName are filled from the MITRE catalogue.
	TacticName    string   `json:"tacticName,omitempty"`
	TechniqueName string   `json:"techniqueName,omitempty"`
	MSMatrix      string   `json:"msMatrix,omitempty"` // MS-TA9019
	Tags          []string `json:"tags,omitempty"`

	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Resource names what the alert is about: "clusterrolebindings/evil",
	// "pods/web-0/exec", or a container for runtime alerts.
	Resource string `json:"resource,omitempty"`
	Actor    Actor  `json:"actor"`

	// Evidence holds the events that fired the alert, trimmed by their
	// source (large objects cut, managed fields dropped), newest last, at
	// most MaxEvidence of them.
	Evidence    []json.RawMessage `json:"evidence,omitempty"`
	Remediation string            `json:"remediation,omitempty"`

	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Count     int64     `json:"count"`
	DedupeKey string    `json:"dedupeKey"`
}

// MaxEvidence is how many events an alert keeps as evidence.
const MaxEvidence = 5

// Actor is who or what acted: a Kubernetes identity for audit alerts, a
// process in a workload for runtime alerts.
type Actor struct {
	User      string   `json:"user,omitempty"`
	UID       string   `json:"uid,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	SourceIPs []string `json:"sourceIPs,omitempty"`
	UserAgent string   `json:"userAgent,omitempty"`
	// Impersonator is the real user when the request was impersonated.
	Impersonator string    `json:"impersonator,omitempty"`
	Workload     *Workload `json:"workload,omitempty"`
	Process      *Process  `json:"process,omitempty"`
}

// Workload is where a runtime event happened.
type Workload struct {
	Node        string `json:"node,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Pod         string `json:"pod,omitempty"`
	Container   string `json:"container,omitempty"`
	ContainerID string `json:"containerId,omitempty"`
	Image       string `json:"image,omitempty"`
	ImageDigest string `json:"imageDigest,omitempty"`
}

// Process is the process behind a runtime event.
type Process struct {
	PID     int    `json:"pid,omitempty"`
	Exe     string `json:"exe,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	UID     int    `json:"uid"`
	// Ancestry lists the parents' names, nearest last: ["containerd-shim", "nginx", "sh"].
	Ancestry []string `json:"ancestry,omitempty"`
}

// Subject is what an event says about itself for alerts: when, where, who.
type Subject struct {
	Time      time.Time
	Cluster   string
	Namespace string
	Resource  string
	Actor     Actor
}

// dedupeKey hashes the rule id with the rule's grouping value.
func dedupeKey(ruleID, cluster, group string) string {
	h := sha256.Sum256([]byte(ruleID + "\x00" + cluster + "\x00" + group))
	return ruleID + ":" + hex.EncodeToString(h[:10])
}

// Record converts the alert to the stored form for store.AlertStore.
// clusterID is used when the alert names no cluster.
func (a *Alert) Record(clusterID string) (store.Alert, error) {
	actor, err := json.Marshal(a.Actor)
	if err != nil {
		return store.Alert{}, fmt.Errorf("alert %s: actor: %w", a.RuleID, err)
	}
	evidence, err := json.Marshal(a.Evidence)
	if err != nil {
		return store.Alert{}, fmt.Errorf("alert %s: evidence: %w", a.RuleID, err)
	}
	c := a.Cluster
	if c == "" {
		c = clusterID
	}
	return store.Alert{
		ClusterID: c, DedupeKey: a.DedupeKey, Source: a.Source, RuleID: a.RuleID,
		Title: a.Title, Severity: a.Severity, Tactic: a.Tactic, Technique: a.Technique,
		Namespace: a.Namespace, Resource: a.Resource, Actor: actor, Evidence: evidence,
		FirstSeen: a.FirstSeen, LastSeen: a.LastSeen, Count: max(a.Count, 1), Status: store.AlertOpen,
	}, nil
}
