// Package remotetest holds the tests of package image against a real
// registry (testenv.Registry: CNCF distribution with htpasswd, token auth
// and TLS). They live apart from package image so that image's own test
// binary does not link the registry and its dependencies, which would make
// its fuzz targets crawl (coverage instrumentation of every package linked).
// It has no code of its own.
package remotetest
