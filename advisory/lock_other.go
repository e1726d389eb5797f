//go:build !unix

package advisory

// lockDir is a no-op where flock is missing; the rename keeps readers
// safe, and concurrent writers of one directory are the caller's concern.
func lockDir(string) (func(), error) { return func() {}, nil }
