// Package service runs audit detection as a process: it wires the sources
// a configuration names (webhook, log files, CloudWatch Logs) to the
// pipeline and its sinks (JSON lines, the store), serves metrics, saves
// baselines, and replays saved logs for forensics. It is what
// "bulwark audit serve" and "bulwark audit replay" call.
//
// What it is not: detection logic (package audit and detect) or a
// source (the sub-packages of audit).
package service
