package traceanalyze

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePrices(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		isJSON bool
		want   *Prices
		err    string
	}{
		{
			name: "yaml",
			doc:  "currency: EUR\ndefault: {input_per_million: 1, output_per_million: 2.5}\nmodels:\n  m1: {input_per_million: 0, output_per_million: 4}\n",
			want: &Prices{Currency: "EUR", Default: Price{1, 2.5}, Models: map[string]Price{"m1": {0, 4}}},
		},
		{
			name: "json, currency defaults to USD", isJSON: true,
			doc:  `{"default":{"input_per_million":1,"output_per_million":2},"models":{"m":{"input_per_million":3,"output_per_million":4}}}`,
			want: &Prices{Currency: "USD", Default: Price{1, 2}, Models: map[string]Price{"m": {3, 4}}},
		},
		{name: "no default", doc: "models:\n  m: {input_per_million: 1, output_per_million: 1}\n", err: "no default entry"},
		{name: "negative price", doc: "default: {input_per_million: -1, output_per_million: 1}\n", err: "default: input_per_million = -1"},
		{name: "missing output price", doc: "default: {input_per_million: 1, output_per_million: 1}\nmodels:\n  m: {input_per_million: 1}\n", err: "models.m: output_per_million missing"},
		{name: "not a number", doc: "default: {input_per_million: .nan, output_per_million: 1}\n", err: "want a finite price"},
		{name: "unknown field (a typo)", doc: "default: {input_per_milion: 1, output_per_million: 1}\n", err: "input_per_milion"},
		{name: "unknown json field", isJSON: true, doc: `{"defaults":{}}`, err: "unknown field"},
		{name: "empty yaml", doc: "", err: "empty document"},
		{name: "empty json", isJSON: true, doc: "", err: "empty document"},
		{name: "yaml syntax", doc: "default: [", err: "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePrices([]byte(tt.doc), tt.isJSON)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Currency != tt.want.Currency || got.Default != tt.want.Default || len(got.Models) != len(tt.want.Models) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for k, v := range tt.want.Models {
				if got.Models[k] != v {
					t.Errorf("model %s = %+v, want %+v", k, got.Models[k], v)
				}
			}
		})
	}
}

func TestPriceCostAndLookup(t *testing.T) {
	p := &Prices{Default: Price{1, 2}, Models: map[string]Price{"m": {3, 4}}}
	if c := p.For("m").Cost(1_000_000, 500_000); c != 5 {
		t.Errorf("m: %v, want 3 + 2", c)
	}
	if c := p.For("other").Cost(2_000_000, 0); c != 2 {
		t.Errorf("default: %v, want 2", c)
	}
}

func TestShippedPricesExample(t *testing.T) {
	p, err := LoadPrices(filepath.Join("..", "..", "configs", "prices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Currency != "USD" || p.Default.InputPerMillion <= 0 || p.For("tiny") == p.Default {
		t.Errorf("configs/prices.yaml = %+v", p)
	}
	// Extension decides the format: the same JSON named .json loads.
	path := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(path, []byte(`{"default":{"input_per_million":1,"output_per_million":1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrices(path); err != nil {
		t.Error(err)
	}
	if _, err := LoadPrices(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "prices") {
		t.Errorf("missing file: %v", err)
	}
}
