package k8stest

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	configapi "sigs.k8s.io/gateway-api-inference-extension/apix/config/v1alpha1"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/config"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/config/loader"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/datalayer"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/flowcontrol"
	fwkdl "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/datalayer"
	fwkplugin "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/plugin"
	extractormetrics "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/datalayer/extractor/metrics"
	sourcemetrics "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/datalayer/source/metrics"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/flowcontrol/fairness"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/flowcontrol/ordering"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/flowcontrol/saturationdetector/utilization"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/flowcontrol/usagelimits"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/requesthandling/parsers/openai"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/picker"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/profile"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/scorer/kvcacheutilization"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/scorer/prefix"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/scorer/queuedepth"
)

// registerPicker registers, as the picker's runner does at start
// (cmd/epp/runner, registerInTreePlugins), the factories of the plugin
// types the config names and of those the loader adds by default
// (profile handler, picker, flow-control policies, parser, saturation
// detector). A type outside this list fails the load as unregistered.
var registerPicker = sync.OnceFunc(func() {
	for typ, factory := range map[string]fwkplugin.FactoryFunc{
		queuedepth.QueueScorerType:                      queuedepth.QueueScorerFactory,
		kvcacheutilization.KvCacheUtilizationScorerType: kvcacheutilization.KvCacheUtilizationScorerFactory,
		prefix.PrefixCacheScorerPluginType:              prefix.PrefixCachePluginFactory,
		picker.MaxScorePickerType:                       picker.MaxScorePickerFactory,
		profile.SingleProfileHandlerType:                profile.SingleProfileHandlerFactory,
		fairness.GlobalStrictFairnessPolicyType:         fairness.GlobalStrictFairnessPolicyFactory,
		ordering.FCFSOrderingPolicyType:                 ordering.FCFSOrderingPolicyFactory,
		usagelimits.StaticUsageLimitPolicyType:          usagelimits.StaticPolicyFactory,
		openai.OpenAIParserType:                         openai.OpenAIParserPluginFactory,
		utilization.UtilizationDetectorType:             utilization.UtilizationDetectorFactory,
		sourcemetrics.MetricsDataSourceType:             sourcemetrics.MetricsDataSourceFactory,
		extractormetrics.MetricsExtractorType:           extractormetrics.CoreMetricsExtractorFactory,
	} {
		fwkplugin.Register(typ, factory)
	}
	for _, gate := range []string{datalayer.ExperimentalDatalayerFeatureGate, datalayer.EnableLegacyMetricsFeatureGate, flowcontrol.FeatureGate} {
		loader.RegisterFeatureGate(gate)
	}
})

// eppConfig is deploy/epp/endpointpicker.yaml.
func eppConfig(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "epp", "endpointpicker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// endpointPicker is a configuration as the picker loads it: the raw
// config (strictly decoded, defaults applied), the instantiated one, and
// its one metrics source with its extractor.
type endpointPicker struct {
	raw       *configapi.EndpointPickerConfig
	gates     map[string]bool
	cfg       *config.Config
	source    fwkdl.PollingDataSource
	extractor fwkdl.Extractor
}

// loadPicker runs the picker's two configuration phases on data:
// loader.LoadRawConfig, then loader.InstantiateAndConfigure with a
// picker handle (no pods).
func loadPicker(t testing.TB, data []byte) (*endpointPicker, error) {
	t.Helper()
	registerPicker()
	raw, gates, err := loader.LoadRawConfig(data, logr.Discard())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // stops the prefix cache's clean-up goroutine
	handle := fwkplugin.NewEppHandle(ctx, func() []types.NamespacedName { return nil })
	cfg, err := loader.InstantiateAndConfigure(raw, handle, logr.Discard())
	if err != nil {
		return nil, err
	}
	p := &endpointPicker{raw: raw, gates: gates, cfg: cfg}
	if cfg.DataConfig == nil || len(cfg.DataConfig.Sources) != 1 || len(cfg.DataConfig.Sources[0].Extractors) != 1 {
		t.Fatalf("data layer %+v: want one source with one extractor", cfg.DataConfig)
	}
	src := cfg.DataConfig.Sources[0]
	var ok bool
	if p.source, ok = src.Plugin.(fwkdl.PollingDataSource); !ok {
		t.Fatalf("data source %T does not poll", src.Plugin)
	}
	p.extractor = src.Extractors[0]
	return p, nil
}

// TestEndpointPickerConfig: deploy/epp/endpointpicker.yaml is a valid
// EndpointPickerConfig for the picker's loader, which decodes it strictly,
// and wires the metrics scrape of Lumen's pods.
func TestEndpointPickerConfig(t *testing.T) {
	p, err := loadPicker(t, eppConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.raw.APIVersion != "inference.networking.x-k8s.io/v1alpha1" || p.raw.Kind != "EndpointPickerConfig" {
		t.Errorf("apiVersion %q kind %q", p.raw.APIVersion, p.raw.Kind)
	}
	if p.gates[datalayer.EnableLegacyMetricsFeatureGate] {
		t.Error("legacy metrics enabled: the data layer (and its extractor config) would be ignored")
	}
	if got := p.source.TypedName().Type; got != sourcemetrics.MetricsDataSourceType {
		t.Errorf("data source %s, want %s", got, sourcemetrics.MetricsDataSourceType)
	}
	if got := p.extractor.TypedName().Type; got != extractormetrics.MetricsExtractorType {
		t.Errorf("extractor %s, want %s", got, extractormetrics.MetricsExtractorType)
	}
	if p.extractor.ExpectedInputType() != p.source.OutputType() {
		t.Errorf("extractor reads %v, source gives %v", p.extractor.ExpectedInputType(), p.source.OutputType())
	}
	// The scorers and their weights, as written (the loader adds the
	// picker the profile lacks).
	weights := map[string]float64{}
	for _, prof := range p.raw.SchedulingProfiles {
		if prof.Name != "default" {
			t.Errorf("unexpected profile %q", prof.Name)
		}
		for _, pl := range prof.Plugins {
			if pl.Weight != nil {
				weights[pl.PluginRef] = *pl.Weight
			}
		}
	}
	want := map[string]float64{queuedepth.QueueScorerType: 2, kvcacheutilization.KvCacheUtilizationScorerType: 2, prefix.PrefixCacheScorerPluginType: 3}
	if !reflect.DeepEqual(weights, want) {
		t.Errorf("scorer weights %v, want %v", weights, want)
	}
	if p.cfg.SchedulerConfig == nil || p.cfg.SaturationDetector == nil || p.cfg.ParserConfig == nil {
		t.Errorf("incomplete picker config: %+v", p.cfg)
	}
}

// TestEndpointPickerConfigIsStrict: the loader refuses fields it does not
// know, so a misspelt key in the file cannot pass TestEndpointPickerConfig.
func TestEndpointPickerConfigIsStrict(t *testing.T) {
	good := string(eppConfig(t))
	for name, bad := range map[string]string{
		"unknown top-level field": good + "scheduling: {}\n",
		"misspelt weight":         strings.Replace(good, "weight: 3", "wieght: 3", 1),
		"unregistered plugin":     strings.Replace(good, "- type: queue-scorer", "- type: queue-scorer-v2", 1),
		"wrong kind":              strings.Replace(good, "kind: EndpointPickerConfig", "kind: EndpointPicker", 1),
	} {
		if bad == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		_, err := loadPicker(t, []byte(bad))
		if err == nil {
			t.Errorf("%s: loaded without an error", name)
			continue
		}
		t.Logf("%s: refused: %v", name, err)
	}
}
