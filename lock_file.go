//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package apikey

import (
	"errors"
	"io/fs"
	"os"
)

// lockFile takes the lock by creating the file at path, which must not
// exist; unlockFile removes it. A process that dies holding the lock leaves
// the file behind: the error of the next open names it, to be removed once
// no process uses the store.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, errLocked
	}
	return f, err
}

// unlockFile releases a lock taken by lockFile.
func unlockFile(f *os.File, path string) error {
	err := f.Close()
	if rerr := os.Remove(path); err == nil {
		err = rerr
	}
	return err
}
