package scheduler

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

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
