package auth

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		keys Keys
		give string
		ok   bool
	}{
		{"no keys accepts anything", Keys{}, "", true},
		{"right key", NewKeys("s3cret", "other"), "other", true},
		{"wrong key", NewKeys("s3cret"), "s3cre", false},
		{"missing key", NewKeys("s3cret"), "", false},
		{"blank keys ignored", NewKeys("", " "), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.keys.Check(tt.give)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrUnauthenticated)) {
				t.Errorf("Check(%q) = %v, want ok=%v", tt.give, err, tt.ok)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for have, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "": "", "Bearer ": ""} {
		if got := BearerToken(have); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", have, got, want)
		}
	}
}

func TestLoadKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte("# team keys\nalpha\n\n  beta  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeyFile(p)
	if err != nil || !slices.Equal(keys, []string{"alpha", "beta"}) {
		t.Errorf("LoadKeyFile = %v, %v", keys, err)
	}
}
