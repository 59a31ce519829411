package inference

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// byteTokenizer: BOS is 1, then one token per byte (+2). A "<s>" in
// special-parsing mode becomes BOS.
type byteTokenizer struct{}

func (byteTokenizer) ControlTokens() []ControlToken { return []ControlToken{{Text: "<s>", ID: 1}} }

func (byteTokenizer) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	var out []int32
	if addSpecial {
		out = append(out, 1)
	}
	for len(text) > 0 {
		if parseSpecial && strings.HasPrefix(text, "<s>") {
			out = append(out, 1)
			text = text[3:]
			continue
		}
		out = append(out, int32(text[0])+2)
		text = text[1:]
	}
	return out, nil
}

func (byteTokenizer) FIM() (pre, suf, mid int32, ok bool) { return 0, 0, 0, false }

func (byteTokenizer) Detokenize(tokens []int32) (string, error) {
	var b []byte
	for _, t := range tokens {
		if t >= 2 {
			b = append(b, byte(t-2))
		}
	}
	return string(b), nil
}

type bosTemplate struct{}

func (bosTemplate) Render(_ context.Context, msgs []chat.Message, _ []toolcall.Tool, _ bool) (string, error) {
	var sb strings.Builder
	sb.WriteString("<s>")
	for _, m := range msgs {
		sb.WriteString(m.Role + ":" + m.Content + "\n")
	}
	return sb.String(), nil
}

type captureSubmitter struct{ got scheduler.Request }

func (c *captureSubmitter) Submit(_ context.Context, r scheduler.Request) (<-chan scheduler.Event, error) {
	c.got = r
	ch := make(chan scheduler.Event)
	close(ch)
	return ch, nil
}
func (c *captureSubmitter) Validate(scheduler.Request) error { return nil }
func (c *captureSubmitter) SlotContext() int                 { return 1000 }

func newService(sub *captureSubmitter) *Service {
	return New(Config{Model: Model{ID: "m"}, Tokenizer: byteTokenizer{}, Chat: bosTemplate{}, Scheduler: sub,
		Limits: Limits{MaxPromptBytes: 64, MaxMessages: 2}})
}

func TestGenerateValidation(t *testing.T) {
	tests := []struct {
		name  string
		req   GenerateRequest
		field string
	}{
		{"empty", GenerateRequest{}, "prompt"},
		{"both prompt and messages", GenerateRequest{Prompt: "a", Messages: []chat.Message{{Role: "user", Content: "b"}}}, "prompt"},
		{"invalid UTF-8", GenerateRequest{Prompt: "a\xffb"}, "prompt"},
		{"prompt too large", GenerateRequest{Prompt: strings.Repeat("a", 65)}, "prompt"},
		{"bad role", GenerateRequest{Messages: []chat.Message{{Role: "robot", Content: "x"}}}, "messages[0].role"},
		{"too many messages", GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}, {Role: "user", Content: "c"}}}, "messages"},
		{"temperature", GenerateRequest{Prompt: "a", Sampling: scheduler.SamplingParams{Temperature: 3}}, "temperature"},
		{"top_p", GenerateRequest{Prompt: "a", Sampling: scheduler.SamplingParams{TopP: 1.5}}, "top_p"},
		{"top_k", GenerateRequest{Prompt: "a", Sampling: scheduler.SamplingParams{TopK: -1}}, "top_k"},
		{"top_k past int32", GenerateRequest{Prompt: "a", Sampling: scheduler.SamplingParams{TopK: 1<<32 + 1}}, "top_k"},
		{"stop not UTF-8", GenerateRequest{Prompt: "a", Stop: []string{"\xff"}}, "stop[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newService(&captureSubmitter{}).Generate(context.Background(), tt.req)
			var ie *reqerr.InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Errorf("err = %v, want invalid %s", err, tt.field)
			}
		})
	}
	if _, err := newService(&captureSubmitter{}).Generate(context.Background(), GenerateRequest{Model: "other", Prompt: "a"}); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("unknown model: %v", err)
	}
}

func TestGenerateBuildsRequest(t *testing.T) {
	sub := &captureSubmitter{}
	s := newService(sub)
	st, err := s.Generate(context.Background(), GenerateRequest{Messages: []chat.Message{{Role: "user", Content: "hi"}}, MaxTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	// The template's own <s> and the tokenizer's BOS collapse into one.
	want, _ := byteTokenizer{}.Tokenize("<s>user:hi\n", false, true)
	if !slices.Equal(sub.got.Prompt, want) || st.PromptTokens != len(want) {
		t.Errorf("prompt = %v, want %v", sub.got.Prompt, want)
	}
	if sub.got.Sampling.Seed == 0 || sub.got.MaxTokens != 5 || sub.got.ID == "" || st.ID != sub.got.ID {
		t.Errorf("request = %+v: want a random seed, max 5, an id", sub.got)
	}
	if _, err := s.Generate(context.Background(), GenerateRequest{Prompt: "abc"}); err != nil || sub.got.MaxTokens != 256 {
		t.Errorf("default max tokens = %d (%v), want 256", sub.got.MaxTokens, err)
	}
}

func TestCheckTenant(t *testing.T) {
	tests := []struct {
		have string
		ok   bool
	}{
		{"", true},
		{"acme", true},
		{"team-a/prod_1.eu:x@y", true},
		{strings.Repeat("a", MaxTenantLen), true},
		{strings.Repeat("a", MaxTenantLen+1), false},
		{"acme corp", false},
		{"a\nb", false},
		{"caf\u00e9", false},
		{"(other)", false},
	}
	for _, tt := range tests {
		if err := CheckTenant(tt.have); (err == nil) != tt.ok {
			t.Errorf("CheckTenant(%q) = %v, want ok=%v", tt.have, err, tt.ok)
		}
	}
}

// Every numeric field of SamplingParams has a range in SamplingLimits,
// so a new one cannot reach C unchecked; each limit refuses just past
// its bounds and NaN.
func TestSamplingLimitsCoverEveryField(t *testing.T) {
	unchecked := map[string]bool{"Seed": true} // uint32 on every API
	typ := reflect.TypeFor[scheduler.SamplingParams]()
	covered := map[string]bool{}
	for _, l := range SamplingLimits {
		if i, ok := limitField(l); ok {
			covered[typ.Field(i).Name] = true
		}
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
			if !covered[f.Name] && !unchecked[f.Name] {
				t.Errorf("SamplingParams.%s has no entry in SamplingLimits", f.Name)
			}
		case reflect.Uint32:
			if !unchecked[f.Name] {
				t.Errorf("SamplingParams.%s: unsigned field not accounted for", f.Name)
			}
		}
	}
	for _, l := range SamplingLimits {
		for _, bad := range []float64{l.Min - 1, l.Max + 1, math.NaN(), math.Inf(1)} {
			p := set(t, l, bad)
			if l.Field == "top_k" && (math.IsNaN(bad) || math.IsInf(bad, 0)) {
				continue // an int is neither NaN nor infinite
			}
			var ie *reqerr.InvalidError
			if err := ValidateSampling(p); !errors.As(err, &ie) || ie.Field != l.Field {
				t.Errorf("%s = %v: %v, want invalid %s", l.Field, bad, err, l.Field)
			}
		}
		for _, ok := range []float64{l.Min, l.Max} {
			if err := ValidateSampling(set(t, l, ok)); err != nil {
				t.Errorf("%s = %v: %v", l.Field, ok, err)
			}
		}
	}
}

// limitField finds the SamplingParams field l reads: the numeric field
// whose probe value l sees.
func limitField(l NumericLimit) (int, bool) {
	typ := reflect.TypeFor[scheduler.SamplingParams]()
	for i := range typ.NumField() {
		var probe scheduler.SamplingParams
		f := reflect.ValueOf(&probe).Elem().Field(i)
		switch f.Kind() {
		case reflect.Int:
			f.SetInt(7)
		case reflect.Float32:
			f.SetFloat(0.75)
		default:
			continue
		}
		if l.get(probe) != 0 {
			return i, true
		}
	}
	return 0, false
}

// set returns SamplingParams with l's field at v.
func set(t *testing.T, l NumericLimit, v float64) scheduler.SamplingParams {
	t.Helper()
	i, ok := limitField(l)
	if !ok {
		t.Fatalf("no field for %s", l.Field)
	}
	var p scheduler.SamplingParams
	g := reflect.ValueOf(&p).Elem().Field(i)
	if g.Kind() == reflect.Int {
		g.SetInt(int64(v))
	} else {
		g.SetFloat(v)
	}
	return p
}

// The chat package's renderer is what serve gives the service.
var _ ChatRenderer = (*chat.Template)(nil)
