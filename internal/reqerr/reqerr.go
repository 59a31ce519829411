// Package reqerr is the vocabulary of request failures that clients see:
// the scheduler and the inference service return these errors, and each
// transport maps them to its status codes in one place. It imports
// nothing of Lumen's, so a transport can name them without importing the
// scheduler.
package reqerr

import (
	"errors"
	"fmt"
)

// Sentinel errors; transports map them to status codes in one place.
var (
	// ErrQueueFull: the admission queue is at --max-queue.
	ErrQueueFull = errors.New("queue full")
	// ErrDraining: the server is shutting down and accepts no new work.
	ErrDraining = errors.New("server is shutting down")
	// ErrShutdown: the request was cancelled because the drain timeout
	// passed before it finished.
	ErrShutdown = errors.New("request cancelled by server shutdown")
	// ErrInvalid: the request is malformed (see InvalidError for which
	// field).
	ErrInvalid = errors.New("invalid request")
	// ErrEngine: the engine failed while running the request.
	ErrEngine = errors.New("engine failure")
)

// InvalidError names the request field that failed validation.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Invalid returns an InvalidError for field, its reason formatted.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
