package loadgen

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// defaultCharsPerToken is how many characters of prompt text are taken
// to make one token when the target cannot count tokens. It is the demo
// model's ratio for these words (its small vocabulary has ~1.7 characters
// per token); a Llama-style vocabulary makes about one token of each word
// (~6 characters).
const defaultCharsPerToken = 1.7

// calibrationChars is the length of the text whose tokens are counted to
// measure characters per token.
const calibrationChars = 4000

// wordList holds the words drawn at random to make prompts. Picking them
// independently makes every prompt's prefix differ, so the server's
// prefix cache does not flatter the numbers.
const wordList = `the river morning quiet stone light across garden
window old city bright under paper music slowly
forest winter bread table after golden story road
child market evening small green house through cold
mountain letter between friend silver harbor before lamp
ocean careful voice summer door travel among clock
sharp field wooden bridge always north candle deep
village open rain above yellow journey soft tower
during island heavy cloud simple kitchen near wind
painted valley early station warm beyond narrow star`

// planned is one request of the mix and when to cancel it.
type planned struct {
	req Request
	// cancelAfter > 0 cancels the request once this many text chunks
	// have arrived.
	cancelAfter int
}

// mix draws the run's requests and arrival gaps from two random streams
// of the seed, so the requests are the same whatever the mode.
type mix struct {
	cfg           Config
	charsPerToken float64
	words         []string
	requests      *rand.Rand
	arrivals      *rand.Rand
	prefix        string   // shared start of every prompt (PrefixTokens)
	pool          []string // prompts to draw from (PromptPool)
	picks         *rand.Rand
}

func newMix(cfg Config, charsPerToken float64) *mix {
	m := &mix{
		cfg:           cfg,
		charsPerToken: charsPerToken,
		words:         strings.Fields(wordList),
		requests:      rand.New(rand.NewPCG(cfg.Seed, 1)),
		arrivals:      rand.New(rand.NewPCG(cfg.Seed, 2)),
		picks:         rand.New(rand.NewPCG(cfg.Seed, 5)),
	}
	// The pool and the prefix come from streams of their own, so the
	// requests' other draws stay the same with and without them.
	if cfg.PrefixTokens > 0 {
		m.prefix = prompt(rand.New(rand.NewPCG(cfg.Seed, 4)), m.words, float64(cfg.PrefixTokens)*charsPerToken) + " "
	}
	if cfg.PromptPool > 0 {
		r := rand.New(rand.NewPCG(cfg.Seed, 6))
		for range cfg.PromptPool {
			n := spread(cfg.PromptTokens, cfg.PromptSpread, r.Float64())
			m.pool = append(m.pool, prompt(r, m.words, float64(n)*charsPerToken))
		}
	}
	return m
}

// next draws the next request. It takes the same number of draws
// whatever the outcome, so changing one option does not reshuffle the
// rest of the mix.
func (m *mix) next() planned {
	r := m.requests
	promptTokens := spread(m.cfg.PromptTokens, m.cfg.PromptSpread, r.Float64())
	maxTokens := spread(m.cfg.MaxTokens, m.cfg.MaxTokensSpread, r.Float64())
	cancel, cancelAt := r.Float64() < m.cfg.CancelFraction, r.Float64()
	seed := r.Uint32()
	if seed == 0 {
		seed = 1 // 0 means "unset" to the server
	}
	text := prompt(r, m.words, float64(promptTokens)*m.charsPerToken)
	if m.pool != nil {
		text = m.pool[m.picks.IntN(len(m.pool))]
	}
	p := planned{req: Request{
		Model:       m.cfg.Model,
		Prompt:      m.prefix + text,
		MaxTokens:   maxTokens,
		Temperature: m.cfg.Temperature,
		Seed:        seed,
		Constraint:  m.cfg.Constraint,
	}}
	if cancel {
		// Uniform over 1..maxTokens-1 chunks: mid-stream, before the end.
		p.cancelAfter = 1 + int(cancelAt*float64(max(1, maxTokens-1)))
	}
	return p
}

// calibrate measures the target's characters per token on text like the
// prompts; ok is false if the target cannot count tokens.
func calibrate(ctx context.Context, target Target, model string, seed uint64) (float64, bool) {
	tc, ok := target.(TokenCounter)
	if !ok {
		return 0, false
	}
	text := prompt(rand.New(rand.NewPCG(seed, 3)), strings.Fields(wordList), calibrationChars)
	n, err := tc.CountTokens(ctx, model, text)
	if err != nil || n <= 0 {
		return 0, false
	}
	return float64(len(text)) / float64(n), true
}

// gap draws the time to the next arrival of a Poisson process of the
// configured rate.
func (m *mix) gap() time.Duration {
	return time.Duration(m.arrivals.ExpFloat64() / m.cfg.Rate * float64(time.Second))
}

// spread draws uniformly from mean × (1 ± f) given u in [0, 1); at least 1.
func spread(mean int, f, u float64) int {
	v := float64(mean) * (1 + f*(2*u-1))
	return max(1, int(math.Round(v)))
}

// prompt is text of words drawn from r, of at least one word and about
// chars characters.
func prompt(r *rand.Rand, words []string, chars float64) string {
	want := int(math.Round(chars))
	var b strings.Builder
	b.Grow(want + 16)
	for b.Len() == 0 || b.Len() < want {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}
