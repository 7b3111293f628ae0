package apikey

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// errCorruptFile: NewMemoryStore cannot trust the file (truncated, not
// JSON, an unknown version, a duplicate or incomplete record).
var errCorruptFile = fmt.Errorf("%w: corrupt key file", ErrInvalid)

const (
	fileMagic   = "keygate/apikey memory store"
	fileVersion = 1
)

// storeFile is the on-disk form: digests and metadata, never secrets.
type storeFile struct {
	Magic   string       `json:"magic"`
	Version int          `json:"version"`
	Keys    []fileRecord `json:"keys"`
}

type fileRecord struct {
	Digest hexDigest `json:"digest"`
	Key    *Key      `json:"key"`
}

// hexDigest is a Digest written as 64 lowercase hex characters.
type hexDigest Digest

func (d hexDigest) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, d[:]), nil }

func (d *hexDigest) UnmarshalText(b []byte) error {
	if len(b) != 2*len(d) {
		return fmt.Errorf("%w: digest must be %d hex characters", ErrInvalid, 2*len(d))
	}
	if _, err := hex.Decode(d[:], b); err != nil {
		return fmt.Errorf("%w: digest: %w", ErrInvalid, err)
	}
	return nil
}

// errLocked: another store holds the file's lock.
var errLocked = errors.New("locked")

// open takes the file's lock, loads the file, if it exists, and persists
// the store to it from now on. One store at a time may have the file: each
// rewrites it whole from its own memory, so a second one would undo the
// first one's changes (bring a revoked key back, lose a created one).
func (s *MemoryStore) open(path string) error {
	// The real path: two names of one file (a symlink) share one lock, and
	// the atomic rewrite replaces the file, not a symlink to it.
	path, err := realPath(path)
	if err != nil {
		return fmt.Errorf("apikey: open %s: %w", path, err)
	}
	lockPath := path + ".lock"
	lock, err := lockFile(lockPath)
	switch {
	case errors.Is(err, errLocked):
		return fmt.Errorf("apikey: open %s: it is open in another store (the lock %s is held): one process at a time may open a store file; Close the other store first", path, lockPath)
	case err != nil:
		return fmt.Errorf("apikey: open %s: lock: %w", path, err)
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		_ = unlockFile(lock, lockPath)
		return fmt.Errorf("apikey: open %s: %w", path, err)
	default:
		if err := s.load(data); err != nil {
			_ = unlockFile(lock, lockPath)
			return fmt.Errorf("apikey: load %s: %w", path, err)
		}
	}
	s.file, s.lock, s.lockPath = path, lock, lockPath
	return nil
}

// realPath resolves symlinks in path; the file itself need not exist yet.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// Close releases the file for another store; later changes fail (close a
// usage recorder that flushes here first), lookups still answer.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.lock == nil {
		return nil
	}
	if err := unlockFile(s.lock, s.lockPath); err != nil {
		return fmt.Errorf("apikey: close %s: %w", s.file, err)
	}
	return nil
}

func (s *MemoryStore) load(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f storeFile
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("%w: %w", errCorruptFile, err)
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("%w: trailing data", errCorruptFile)
	}
	if f.Magic != fileMagic {
		return fmt.Errorf("%w: not a key file (magic %q)", errCorruptFile, f.Magic)
	}
	if f.Version != fileVersion {
		return fmt.Errorf("%w: version %d, want %d", errCorruptFile, f.Version, fileVersion)
	}
	for i, r := range f.Keys {
		if err := checkRecord(Digest(r.Digest), r.Key); err != nil {
			return fmt.Errorf("%w: record %d: %w", errCorruptFile, i, err)
		}
	}
	// A key rolled by an older version has no RolledAt: it was rolled when
	// its successor was created.
	created := make(map[string]time.Time, len(f.Keys))
	for _, r := range f.Keys {
		created[r.Key.ID] = r.Key.CreatedAt
	}
	for _, r := range f.Keys {
		if r.Key.RolledTo == "" || !r.Key.RolledAt.IsZero() {
			continue
		}
		if at, ok := created[r.Key.RolledTo]; ok {
			r.Key.RolledAt = at
		}
	}
	// In List's order, so that each insert into the ordered indexes is an
	// append.
	order := make([]int, len(f.Keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return listOrder(f.Keys[a].Key, f.Keys[b].Key) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range order {
		r := f.Keys[i]
		if err := s.insertLocked(Digest(r.Digest), r.Key); err != nil {
			return fmt.Errorf("%w: record %d: %w", errCorruptFile, i, err)
		}
	}
	return nil
}

// errClosed: a change after Close.
var errClosed = errors.New("apikey: the memory store is closed")

// saveLocked rewrites the file, if any, atomically. s.mu must be held.
func (s *MemoryStore) saveLocked() error {
	if s.file == "" {
		return nil
	}
	f := storeFile{Magic: fileMagic, Version: fileVersion, Keys: make([]fileRecord, 0, s.ids.table.live)}
	s.eachLocked(func(d Digest, k *Key) {
		f.Keys = append(f.Keys, fileRecord{Digest: hexDigest(d), Key: k})
	})
	slices.SortFunc(f.Keys, func(a, b fileRecord) int { return strings.Compare(a.Key.ID, b.Key.ID) })
	data, err := json.MarshalIndent(&f, "", " ")
	if err != nil {
		return fmt.Errorf("apikey: save: %w", err)
	}
	if err := writeFileAtomic(s.file, append(data, '\n')); err != nil {
		return fmt.Errorf("apikey: save %s: %w", s.file, err)
	}
	return nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The new file is in place: from here on the change has happened, so
	// syncing the directory (which makes the rename itself durable) is
	// best effort. Reporting its failure would make callers undo in memory
	// what the file already holds.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
