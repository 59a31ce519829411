// Package auth owns API-key checking for the inference routes of both
// transports. It knows nothing of HTTP or gRPC framing.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrUnauthenticated: a key is required and the one given is missing or
// wrong.
var ErrUnauthenticated = errors.New("missing or invalid API key")

// Keys is a set of accepted API keys. The zero value accepts every
// request (no keys configured).
type Keys struct {
	hashes [][32]byte
}

// NewKeys accepts the given keys (empty strings are ignored).
func NewKeys(keys ...string) Keys {
	var k Keys
	for _, key := range keys {
		if key = strings.TrimSpace(key); key != "" {
			k.hashes = append(k.hashes, sha256.Sum256([]byte(key)))
		}
	}
	return k
}

// LoadKeyFile reads one key per line ('#' starts a comment).
func LoadKeyFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api key file: %w", err)
	}
	var keys []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	return keys, nil
}

// Enabled reports whether any key is required.
func (k Keys) Enabled() bool { return len(k.hashes) > 0 }

// Check accepts key when it is one of the keys, or when none are set.
// Comparison is constant-time in the key's content.
func (k Keys) Check(key string) error {
	if !k.Enabled() {
		return nil
	}
	h := sha256.Sum256([]byte(key))
	ok := 0
	for _, want := range k.hashes {
		ok |= subtle.ConstantTimeCompare(h[:], want[:])
	}
	if key == "" || ok != 1 {
		return ErrUnauthenticated
	}
	return nil
}

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// value ("" when absent or of another scheme).
func BearerToken(header string) string {
	const prefix = "bearer "
	if len(header) > len(prefix) && strings.EqualFold(header[:len(prefix)], prefix) {
		return strings.TrimSpace(header[len(prefix):])
	}
	return ""
}
