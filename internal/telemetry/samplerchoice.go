package telemetry

import (
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"fmt"
	"os"
	"strconv"
	"strings"
)

// buildSampler returns the request spans' sampler and, when a strategies
// file is used, the FileSampler deciding their roots (and, through the
// batch sampler, batch spans). A nil sampler leaves the choice to the SDK,
// which reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func buildSampler(cfg Config, service string) (sdktrace.Sampler, *FileSampler, error) {
	if cfg.SamplingConfig != "" {
		if cfg.Sampler != nil {
			return nil, nil, fmt.Errorf("telemetry: a sampling config file (%s) and a sampler (%s) are mutually exclusive", cfg.SamplingConfig, cfg.Sampler.Description())
		}
		fs, err := NewFileSampler(FileSamplerConfig{Path: cfg.SamplingConfig, ServiceName: service})
		if err != nil {
			return nil, nil, err
		}
		return sdktrace.ParentBased(fs), fs, nil
	}
	if cfg.Sampler != nil {
		return cfg.Sampler, nil, nil
	}
	return nil, nil, checkEnvSampler()
}

// checkEnvSampler refuses an OTEL_TRACES_SAMPLER[_ARG] that the SDK would
// not use. The SDK builds the sampler itself, but on a name it does not
// know it reports the error to the global OpenTelemetry error handler
// (which Lumen leaves as it is, a log line) and samples with the default,
// parentbased_always_on, and on a ratio it cannot read it samples
// everything: a misspelt always_off or a ratio written as "1%" would
// quietly record every request. Only the names and the ratio's range are
// checked; the sampler is still the SDK's.
func checkEnvSampler() error {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	switch name {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
		if r, err := strconv.ParseFloat(arg, 64); arg != "" && (err != nil || r < 0 || r > 1) {
			return fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER_ARG=%q: the ratio of %s is not a number in [0, 1]", arg, name)
		}
		return nil
	default:
		return fmt.Errorf("telemetry: OTEL_TRACES_SAMPLER=%q unsupported (want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", name)
	}
}
