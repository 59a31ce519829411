package traceanalyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Price is what a model's tokens cost, per million.
type Price struct {
	InputPerMillion  float64 `json:"input_per_million"`
	OutputPerMillion float64 `json:"output_per_million"`
}

// Cost is the price of in input and out output tokens.
func (p Price) Cost(in, out int64) float64 {
	return float64(in)*p.InputPerMillion/1e6 + float64(out)*p.OutputPerMillion/1e6
}

// Prices maps models to prices; models not listed use Default.
type Prices struct {
	Currency string           `json:"currency"`
	Default  Price            `json:"default"`
	Models   map[string]Price `json:"models,omitempty"`
}

// For is the price of a model.
func (p *Prices) For(model string) Price {
	if m, ok := p.Models[model]; ok {
		return m
	}
	return p.Default
}

// The file's shape; pointers tell a missing price from a zero one.
type priceFile struct {
	Currency string                `json:"currency" yaml:"currency"`
	Default  *priceEntry           `json:"default" yaml:"default"`
	Models   map[string]priceEntry `json:"models" yaml:"models"`
}

type priceEntry struct {
	Input  *float64 `json:"input_per_million" yaml:"input_per_million"`
	Output *float64 `json:"output_per_million" yaml:"output_per_million"`
}

// LoadPrices reads a prices file: JSON when its name ends in .json, YAML
// otherwise. See configs/prices.yaml for the shape.
func LoadPrices(path string) (*Prices, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	p, err := ParsePrices(b, strings.EqualFold(filepath.Ext(path), ".json"))
	if err != nil {
		return nil, fmt.Errorf("prices %s: %w", path, err)
	}
	return p, nil
}

// ParsePrices parses a prices document (JSON or YAML). Unknown fields, a
// missing default entry, and missing, negative or non-finite prices are
// errors.
func ParsePrices(b []byte, isJSON bool) (*Prices, error) {
	var f priceFile
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("empty document")
			}
			return nil, err
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("empty document")
			}
			return nil, err
		}
	}
	if f.Default == nil {
		return nil, errors.New("no default entry (the price of models not listed)")
	}
	p := &Prices{Currency: f.Currency, Models: map[string]Price{}}
	if p.Currency == "" {
		p.Currency = "USD"
	}
	var err error
	if p.Default, err = f.Default.price("default"); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(f.Models))
	for name := range f.Models {
		names = append(names, name)
	}
	slices.Sort(names) // report the first bad entry deterministically
	for _, name := range names {
		e := f.Models[name]
		if p.Models[name], err = e.price(fmt.Sprintf("models.%s", name)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (e priceEntry) price(where string) (Price, error) {
	check := func(v *float64, field string) (float64, error) {
		switch {
		case v == nil:
			return 0, fmt.Errorf("%s: %s missing", where, field)
		case math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0:
			return 0, fmt.Errorf("%s: %s = %v: want a finite price ≥ 0", where, field, *v)
		}
		return *v, nil
	}
	in, err := check(e.Input, "input_per_million")
	if err != nil {
		return Price{}, err
	}
	out, err := check(e.Output, "output_per_million")
	if err != nil {
		return Price{}, err
	}
	return Price{InputPerMillion: in, OutputPerMillion: out}, nil
}
