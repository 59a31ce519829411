package recorder

import (
	"fmt"
	"testing"
)

func TestTenantLabelsKeepTheFirstMax(t *testing.T) {
	l := tenantLabels{max: 2, seen: map[string]struct{}{}}
	tests := []struct{ have, want string }{
		{"a", "a"}, {"", ""}, {"b", "b"}, {"c", OtherTenant}, {"a", "a"}, {"d", OtherTenant}, {"b", "b"}, {"", ""},
	}
	for i, tt := range tests {
		if got := l.label(tt.have); got != tt.want {
			t.Errorf("%d: label(%q) = %q, want %q", i, tt.have, got, tt.want)
		}
	}
	for i := range 1000 {
		l.label(fmt.Sprint("t", i))
	}
	if len(l.seen) != 2 {
		t.Errorf("%d tenants kept, want 2", len(l.seen))
	}
}
