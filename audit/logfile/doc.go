// Package logfile follows kube-apiserver's JSON-lines audit log
// (--audit-log-path, --audit-log-format=json) like tail -F: it reads new
// lines as they are written, follows rotation (the file renamed and a new
// one created, as the apiserver's lumberjack rotation does) and truncation,
// and persists its position (file identity and offset) after each batch it
// handed over, so that a restart neither loses nor repeats events.
//
// Lines may also be AKS diagnostic records or GKE log entries (Format), as
// exported to files. A line longer than audit.MaxEventBytes or that does
// not parse is skipped and counted; a partial last line is left until the
// writer finishes it.
//
// What it is not: inotify-based (it polls, which works on every
// filesystem, including the network ones control-plane logs often sit on).
package logfile
