//go:build unix

package advisory

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the directory's lock file; the lock
// goes with the process, so a crash never leaves it held.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(lockPath(dir), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("advisory: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("advisory: lock %s: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
