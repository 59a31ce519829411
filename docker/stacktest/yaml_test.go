package stacktest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// yamlDoc is a YAML file decoded into maps, for checks that follow one
// value across files (a port, a host, a path).
type yamlDoc map[string]any

func readYAML(t testing.TB, path string) yamlDoc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Into a plain map: decoding into yamlDoc would make every nested
	// mapping a yamlDoc too.
	var d map[string]any
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return yamlDoc(d)
}

// decodeYAML decodes a YAML file into v, ignoring keys v does not name.
func decodeYAML(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// decodeStrict decodes a YAML file into v, failing on keys v does not
// know: a misspelt key is an error rather than a silently ignored one.
func decodeStrict(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// lookup follows keys through nested maps.
func (d yamlDoc) lookup(keys ...string) (any, error) {
	var cur any = map[string]any(d)
	for i, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not a mapping", strings.Join(keys[:i], "."))
		}
		if cur, ok = m[k]; !ok {
			return nil, fmt.Errorf("%s is missing", strings.Join(keys[:i+1], "."))
		}
	}
	return cur, nil
}

// str is the string at keys; the test fails if it is absent.
func (d yamlDoc) str(t testing.TB, keys ...string) string {
	t.Helper()
	v, err := d.lookup(keys...)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s is %T, want a string", strings.Join(keys, "."), v)
	}
	return s
}

// hostPort splits "host:port" into its host and numeric port.
func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: port: %v", addr, err)
	}
	return host, port
}
