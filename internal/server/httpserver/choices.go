package httpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sort"
	"sync"

	"github.com/lumenllm/lumen/internal/inference"
)

// A request with n > 1, or a completions request with several prompts,
// has several choices: each is a request of its own to the scheduler, all
// submitted together and read back as they come. The choices of one
// prompt share its prefill (inference.GenerateRequest.SharePrefill).

// maxChoices bounds prompts × n in one request (OpenAI's n limit).
const maxChoices = 128

// promptInput is one prompt of a completions request: text, or tokens.
type promptInput struct {
	text   string
	tokens []int32
}

// prompts decodes OpenAI's prompt (or embeddings input, named by field):
// a string, an array of strings, an array of token ids, or an array of
// token arrays.
func prompts(raw json.RawMessage, field string) ([]promptInput, error) {
	const shape = "must be a string, an array of strings, an array of token ids or an array of token arrays"
	if isNull(raw) {
		return nil, invalidField(field, "is required")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []promptInput{{text: one}}, nil
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		if len(texts) == 0 {
			return nil, invalidField(field, "must not be an empty array")
		}
		out := make([]promptInput, len(texts))
		for i, t := range texts {
			out[i] = promptInput{text: t}
		}
		return out, nil
	}
	var toks []int32
	if json.Unmarshal(raw, &toks) == nil {
		if len(toks) == 0 {
			return nil, invalidField(field, "must not be an empty array")
		}
		return []promptInput{{tokens: toks}}, nil
	}
	var lists [][]int32
	if json.Unmarshal(raw, &lists) != nil || len(lists) == 0 {
		return nil, invalidField(field, shape)
	}
	out := make([]promptInput, len(lists))
	for i, l := range lists {
		if len(l) == 0 {
			return nil, invalidField(fmt.Sprintf("%s[%d]", field, i), "must not be empty")
		}
		out[i] = promptInput{tokens: l}
	}
	return out, nil
}

// choiceCount reads n (1 when absent).
func choiceCount(n *int, prompts int) (int, error) {
	if n == nil {
		return 1, nil
	}
	if *n < 1 || *n*prompts > maxChoices {
		return 0, invalidField("n", "must be between 1 and %d (prompts × n), got %d", maxChoices/max(prompts, 1), *n)
	}
	return *n, nil
}

// expand makes the requests of n choices of base: choice i has seed
// seed+i when a seed was given, and they share the prompt's prefill.
func expand(base inference.GenerateRequest, n int) []inference.GenerateRequest {
	out := make([]inference.GenerateRequest, n)
	for i := range out {
		out[i] = base
		if n > 1 {
			out[i].SharePrefill = true
			if base.Sampling.Seed != 0 {
				out[i].Sampling.Seed = base.Sampling.Seed + uint32(i)
			}
		}
	}
	return out
}

// startAll submits every request under r's context, or none: when one is refused
// those submitted are closed, and the error response is written. err is
// a failure building the requests. The caller defers closeAll on the
// streams, so that every request ends (and its spans with it) before the
// handler returns and the transport's span ends.
func (s *Server) startAll(w http.ResponseWriter, r *http.Request, reqs []inference.GenerateRequest, err error) ([]*inference.Stream, bool) {
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	streams := make([]*inference.Stream, 0, len(reqs))
	for _, req := range reqs {
		st, err := s.cfg.API.Generate(r.Context(), req)
		if err != nil {
			closeAll(streams)
			s.writeError(w, r, err)
			return nil, false
		}
		streams = append(streams, st)
	}
	return streams, true
}

// closeAll closes every stream (see inference.Stream.Close): those still
// running are cancelled together, then each is waited for.
func closeAll(streams []*inference.Stream) {
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Go(st.Close)
	}
	wg.Wait()
}

// fanIn hands each event of the streams to onEvent as it arrives, with
// its stream's index — Done events too, after which that stream is over —
// and returns every stream's result. It stops at the first error: a
// stream's own (Done.Err), onEvent's, or the client going away.
func fanIn(ctx context.Context, streams []*inference.Stream, onEvent func(i int, ev inference.Event) error) ([]*inference.Result, error) {
	results := make([]*inference.Result, len(streams))
	cases := make([]reflect.SelectCase, len(streams)+1)
	cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	for i, st := range streams {
		cases[i+1] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(st.Events)}
	}
	for open := len(streams); open > 0; {
		k, v, ok := reflect.Select(cases)
		if k == 0 {
			return nil, fmt.Errorf("client went away: %w", context.Cause(ctx))
		}
		i := k - 1
		var ev inference.Event
		if v.IsValid() {
			ev, _ = v.Interface().(inference.Event)
		}
		ev, err := inference.Settle(ev, ok)
		if err != nil {
			return nil, err
		}
		if err := onEvent(i, ev); err != nil {
			return nil, err
		}
		if ev.Done {
			results[i] = ev.Result
			cases[k].Chan = reflect.Value{} // a zero Chan is never selected
			open--
		}
	}
	return results, nil
}

// usageOfAll sums the choices' usage; the choices of one prompt (n of
// them, consecutive) count its tokens once.
func usageOfAll(results []*inference.Result, n int) *usage {
	u := &usage{}
	for i, res := range results {
		if i%n == 0 {
			u.PromptTokens += res.PromptTokens
			u.PromptTokensDetails.CachedTokens += res.CachedTokens
		}
		u.CompletionTokens += res.CompletionTokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// meanLogprob is a candidate's mean token logprob (its rank for best_of;
// -Inf when it has no tokens, so an empty reply ranks last).
func meanLogprob(tokens []inference.TokenInfo) float64 {
	if len(tokens) == 0 {
		return math.Inf(-1)
	}
	var sum float64
	for _, t := range tokens {
		sum += float64(t.Logprob)
	}
	return sum / float64(len(tokens))
}

// bestOf keeps, of each prompt's per consecutive candidates, the n with
// the highest scores (ties: the earlier), likeliest first, reindexed.
func bestOf(choices []completionChoice, scores []float64, per, n int) []completionChoice {
	var out []completionChoice
	for start := 0; start < len(choices); start += per {
		idx := make([]int, per)
		for k := range idx {
			idx[k] = start + k
		}
		sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
		for _, k := range idx[:n] {
			c := choices[k]
			c.Index = len(out)
			out = append(out, c)
		}
	}
	return out
}
