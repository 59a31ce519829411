package w3c

import "testing"

func TestHeaders(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tt := range []struct {
		name        string
		parents, ts []string
		wantTS      string
		wantOK      bool
	}{
		{"one of each", []string{tp}, []string{"foo=1"}, "foo=1", true},
		{"tracestate over three headers", []string{tp}, []string{"foo=1,bar=2", "rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"}, "foo=1,bar=2,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{"empty members skipped", []string{tp}, []string{"foo=1, ,bar=2", " ", ",baz=3,"}, "foo=1,bar=2,baz=3", true},
		{"no tracestate", []string{tp}, nil, "", true},
		{"two traceparents: a new trace", []string{tp, tp}, []string{"foo=1"}, "", false},
		{"no traceparent", nil, []string{"foo=1"}, "", false},
	} {
		gotTP, gotTS, ok := Headers(tt.parents, tt.ts)
		if ok != tt.wantOK || gotTS != tt.wantTS || (ok && gotTP != tp) {
			t.Errorf("%s: %q %q %v, want %q %v", tt.name, gotTP, gotTS, ok, tt.wantTS, tt.wantOK)
		}
	}
}
