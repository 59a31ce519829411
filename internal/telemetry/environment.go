package telemetry

import (
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"fmt"
	"strconv"
	"strings"
	"time"
)

// buildSpanLimits returns the SDK defaults with the attribute value length
// limit from cfg or the environment.
func buildSpanLimits(cfg Config, getenv func(string) string) (sdktrace.SpanLimits, error) {
	length := cfg.MaxAttributeValueLength
	if length == 0 {
		for _, key := range []string{"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"} {
			n, ok, err := envInt(getenv, key)
			if err != nil {
				return sdktrace.SpanLimits{}, err
			}
			if ok {
				length = n
				break
			}
		}
	}
	if length == 0 {
		length = DefaultMaxAttributeValueLength
	}
	if length < 0 {
		length = -1
	}
	return sdktrace.SpanLimits{
		AttributeValueLengthLimit:   length,
		AttributeValueDepthLimit:    sdktrace.DefaultAttributeValueDepthLimit,
		AttributeCountLimit:         sdktrace.DefaultAttributeCountLimit,
		EventCountLimit:             sdktrace.DefaultEventCountLimit,
		LinkCountLimit:              sdktrace.DefaultLinkCountLimit,
		AttributePerEventCountLimit: sdktrace.DefaultAttributePerEventCountLimit,
		AttributePerLinkCountLimit:  sdktrace.DefaultAttributePerLinkCountLimit,
	}, nil
}

// resolveQueueOptions applies cfg, then the OTEL_BSP_* variables, then the
// defaults.
func resolveQueueOptions(cfg Config, getenv func(string) string) (queueOptions, error) {
	count := func(v int, key string, def int) (int, error) {
		if v > 0 {
			return v, nil
		}
		n, ok, err := envInt(getenv, key)
		if err != nil {
			return 0, err
		}
		if !ok {
			return def, nil
		}
		if n <= 0 {
			return 0, fmt.Errorf("telemetry: %s=%d: must be positive", key, n)
		}
		return n, nil
	}
	millis := func(v time.Duration, key string, def time.Duration) (time.Duration, error) {
		if v > 0 {
			return v, nil
		}
		n, err := count(0, key, int(def/time.Millisecond))
		return time.Duration(n) * time.Millisecond, err
	}
	var o queueOptions
	var err error
	if o.maxQueue, err = count(cfg.MaxQueueSize, "OTEL_BSP_MAX_QUEUE_SIZE", DefaultMaxQueueSize); err != nil {
		return o, err
	}
	if o.maxBatch, err = count(cfg.MaxExportBatchSize, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DefaultMaxExportBatchSize); err != nil {
		return o, err
	}
	o.maxBatch = min(o.maxBatch, o.maxQueue)
	if o.batchTimeout, err = millis(cfg.BatchTimeout, "OTEL_BSP_SCHEDULE_DELAY", DefaultBatchTimeout); err != nil {
		return o, err
	}
	if o.exportTimeout, err = millis(cfg.ExportTimeout, "OTEL_BSP_EXPORT_TIMEOUT", DefaultExportTimeout); err != nil {
		return o, err
	}
	return o, nil
}

// envBool reads a boolean variable: "true" or "false" in any case, empty
// meaning false.
func envBool(getenv func(string) string, key string) (bool, error) {
	v := strings.TrimSpace(getenv(key))
	switch strings.ToLower(v) {
	case "":
		return false, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, fmt.Errorf("telemetry: %s=%q: want true or false", key, v)
	}
}

// envInt reads an integer variable; ok is false when it is unset.
func envInt(getenv func(string) string, key string) (n int, ok bool, err error) {
	v := strings.TrimSpace(getenv(key))
	if v == "" {
		return 0, false, nil
	}
	n, err = strconv.Atoi(v)
	if err != nil {
		return 0, false, fmt.Errorf("telemetry: %s=%q: want an integer", key, v)
	}
	return n, true, nil
}
