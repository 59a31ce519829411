package httpserver

import (
	"net/http/httptest"
	"testing"
)

// Span names come from routes, never from the client's path or method.
func TestSpanNameIsTheRoute(t *testing.T) {
	s := New(Config{API: &fakeAPI{}})
	tests := []struct{ method, path, want string }{
		{"POST", "/v1/chat/completions", "POST /v1/chat/completions"},
		{"GET", "/v1/models", "GET /v1/models"},
		{"GET", "/v1/chat/completions", "GET /v1/chat/completions"},
		{"POST", "/v1/made-up-1", "POST unknown route"},
		{"GET", "/x/../../etc", "GET unknown route"},
		{"BREW", "/generate", "_OTHER /generate"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if got := s.SpanName(r); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}
