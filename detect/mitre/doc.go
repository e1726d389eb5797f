// Package mitre is the MITRE ATT&CK catalogue Bulwark's rules map to: the
// tactics and techniques (with sub-techniques) of the ATT&CK for Containers
// matrix, plus the few Enterprise techniques that node-level detections
// need (marked Containers: false), and the technique ids of Microsoft's
// threat matrix for Kubernetes. The data is attack.yaml in this directory,
// embedded; it is data, not code, so a new ATT&CK release is a data change.
//
// What it is not: a full copy of ATT&CK (no descriptions, mitigations or
// groups); the ids and names are enough to label and link alerts.
package mitre
