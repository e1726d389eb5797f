// Package cloudwatch reads EKS control-plane audit logs from CloudWatch
// Logs (log group /aws/eks/<cluster>/cluster, streams
// kube-apiserver-audit-*) with the AWS SDK for Go v2, polling
// FilterLogEvents, and persists its position so that a restart neither
// loses nor repeats events.
//
// The position is the newest event time seen plus the ids of the events
// of the last Lookback before it: each poll asks again from that time
// minus Lookback, skipping the ids it already handed over, so events that
// CloudWatch ingests late (it can lag the apiserver by seconds) are still
// read, once.
//
// What it is not: a subscription-filter consumer (Kinesis or Lambda); the
// polling API needs no infrastructure in the account.
package cloudwatch
