//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package apikey

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on the file at path, creating it, for
// as long as the returned file stays open: flock(2), which the kernel
// releases when the file is closed or the process ends, so a crash never
// leaves a stale lock. A lock held elsewhere is errLocked.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}

// unlockFile releases a lock taken by lockFile.
func unlockFile(f *os.File, _ string) error { return f.Close() }
