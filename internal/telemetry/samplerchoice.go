package telemetry

import (
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"fmt"
	"strconv"
	"strings"
	"time"
)

// buildSampler returns the provider's sampler and, when a strategies file
// is used, the FileSampler deciding its root spans.
func buildSampler(cfg Config, getenv func(string) string, service string) (sdktrace.Sampler, *FileSampler, error) {
	if cfg.SamplingConfig != "" {
		if cfg.Sampler != "" {
			return nil, nil, fmt.Errorf("telemetry: a sampling config file (%s) and a sampler (%s) are mutually exclusive", cfg.SamplingConfig, cfg.Sampler)
		}
		fs, err := NewFileSampler(FileSamplerConfig{Path: cfg.SamplingConfig, ServiceName: service})
		if err != nil {
			return nil, nil, err
		}
		return newBatchSampler(sdktrace.ParentBased(fs), fs, cfg.BatchSpanRate, time.Now), fs, nil
	}
	name, arg, source := cfg.Sampler, cfg.SamplerArg, "sampler"
	if name == "" {
		name, source = getenv("OTEL_TRACES_SAMPLER"), "OTEL_TRACES_SAMPLER"
		if arg == "" {
			arg = getenv("OTEL_TRACES_SAMPLER_ARG")
		}
	}
	s, err := namedSampler(name, arg)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: %s: %w", source, err)
	}
	return newBatchSampler(s, nil, cfg.BatchSpanRate, time.Now), nil, nil
}

// namedSampler maps an OTEL_TRACES_SAMPLER value and its argument to a
// sampler; the empty name is parentbased_always_on.
func namedSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		arg = strings.TrimSpace(arg)
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("ratio %q is not a number in [0, 1]", arg)
		}
		return r, nil
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.TraceIDRatioBased(r), nil
	default:
		return nil, fmt.Errorf("unsupported sampler %q (want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", name)
	}
}
