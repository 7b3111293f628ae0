package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keygate/apikey"
)

// The exit codes (see the package documentation).
const (
	exitOK      = 0
	exitFixable = 1 // an error the operator can fix
	exitUsage   = 2 // a bad command line
	exitStore   = 3 // the store is unreachable or failing
)

// exitHelp is the exit codes' section of every command's help.
const exitHelp = `
Exit codes: 0 success; 1 an error you can fix (unknown key, refused
confirmation, key not ours); 2 usage error (bad flag, missing argument);
3 store unreachable or failing (database down, --timeout exceeded).
`

// usageError is a bad command line: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// storeError is a store that is unreachable or failing: exit code 3.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// errRefused is a destructive action the operator did not confirm.
var errRefused = errors.New("not confirmed")

// classify marks the error of a store call: the store's answers about keys
// (unknown, invalid input, revoked, rolled, expired) are the operator's to
// fix; a missing schema too; anything else, a timeout included, is the
// store failing.
func classify(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, apikey.ErrNotFound), errors.Is(err, apikey.ErrInvalid),
		errors.Is(err, apikey.ErrRevoked), errors.Is(err, apikey.ErrAlreadyRolled),
		errors.Is(err, apikey.ErrExpired):
		return err
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		return fmt.Errorf("%w (the schema is missing: run apikey migrate)", err)
	case errors.Is(err, context.DeadlineExceeded):
		return &storeError{err: fmt.Errorf("%w (the store did not answer within --timeout)", err)}
	}
	return &storeError{err: err}
}

// exitCode returns the exit code of a command's error.
func exitCode(err error) int {
	var (
		ue *usageError
		se *storeError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &se):
		return exitStore
	}
	return exitFixable
}
