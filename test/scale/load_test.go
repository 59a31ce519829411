//go:build scale

package scale

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lumenllm/lumen/test/internal/bintest"
)

// requestDeadline bounds one request: a short completion takes tens of
// milliseconds, the long stream a few seconds.
const requestDeadline = 60 * time.Second

var prompts = []string{
	"Once upon a time",
	"The quick brown fox jumps over the lazy dog.",
	"Write a haiku about load balancers.",
	"In a hole in the ground there lived",
	"List three colours:",
}

// call is one request of a client and how it ended.
type call struct {
	traceID, spanID string // the client's span, sent as traceparent
	stream          bool
	sent, ended     time.Time
	replica         string // X-Lumen-Replica: the server HAProxy used
	err             error  // nil: 200 and a complete, well-formed answer
}

// client sends completions through HAProxy on connections of its own.
type client struct {
	base string
	http *http.Client
}

func newClient(base string) *client {
	return &client{base: base, http: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// complete sends one completion of maxTokens tokens (ignore_eos, so a
// complete answer has exactly that many) with a traceparent of a fresh
// trace, and checks the answer in full. onEvent, when set, is called
// once the first stream event has arrived.
func (c *client) complete(stream bool, prompt string, maxTokens int, onEvent func(replica string)) call {
	cl := call{traceID: randomHex(16), spanID: randomHex(8), stream: stream, sent: time.Now()}
	cl.err = c.do(&cl, prompt, maxTokens, onEvent)
	cl.ended = time.Now()
	return cl
}

func (c *client) do(cl *call, prompt string, maxTokens int, onEvent func(string)) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestDeadline)
	defer cancel()
	body, err := json.Marshal(map[string]any{
		"model": modelName, "prompt": prompt, "max_tokens": maxTokens, "temperature": 1,
		"seed": time.Now().UnixNano() & 0xffffffff, "ignore_eos": true, "stream": cl.stream,
		"stream_options": map[string]bool{"include_usage": cl.stream},
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+cl.traceID+"-"+cl.spanID+"-01")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	cl.replica = resp.Header.Get("X-Lumen-Replica")
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("%s (replica %q): %s", resp.Status, cl.replica, bytes.TrimSpace(msg))
	}
	// The replica answered in the client's trace.
	if tp := strings.Split(resp.Header.Get("traceparent"), "-"); len(tp) != 4 || tp[1] != cl.traceID {
		return fmt.Errorf("reply traceparent %q, want trace %s", resp.Header.Get("traceparent"), cl.traceID)
	}
	if !cl.stream {
		return readReply(resp.Body, maxTokens)
	}
	first := func() {
		if onEvent != nil {
			onEvent(cl.replica)
			onEvent = nil
		}
	}
	return readStream(resp.Body, maxTokens, first)
}

type usage struct {
	CompletionTokens int `json:"completion_tokens"`
}

type choice struct {
	Text         string  `json:"text"`
	FinishReason *string `json:"finish_reason"`
}

// readReply checks a non-streamed completion: one choice, ended at its
// length, with the tokens asked for.
func readReply(r io.Reader, maxTokens int) error {
	var reply struct {
		Object  string   `json:"object"`
		Choices []choice `json:"choices"`
		Usage   *usage   `json:"usage"`
	}
	if err := json.NewDecoder(r).Decode(&reply); err != nil {
		return fmt.Errorf("completion reply: %w", err)
	}
	if reply.Object != "text_completion" || len(reply.Choices) != 1 || reply.Choices[0].FinishReason == nil || reply.Usage == nil {
		return fmt.Errorf("malformed completion reply %+v", reply)
	}
	return checkEnd(*reply.Choices[0].FinishReason, reply.Usage.CompletionTokens, maxTokens)
}

// readStream checks a streamed completion to its end: data events of one
// choice, one finish reason, the usage event, then [DONE] and nothing
// after. A stream cut midway fails here.
func readStream(r io.Reader, maxTokens int, onEvent func()) error {
	var finish *string
	tokens := -1
	err := bintest.ReadSSE(r, func(data []byte) error {
		var ev struct {
			Choices []choice `json:"choices"`
			Usage   *usage   `json:"usage"`
			Error   *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		switch err := json.Unmarshal(data, &ev); {
		case err != nil:
			return fmt.Errorf("malformed event %q: %w", data, err)
		case ev.Error != nil:
			return fmt.Errorf("error event: %s", ev.Error.Message)
		case ev.Usage != nil:
			tokens = ev.Usage.CompletionTokens
		case len(ev.Choices) != 1 || finish != nil:
			return fmt.Errorf("event %q: want one choice, before the finish reason", data)
		default:
			finish = ev.Choices[0].FinishReason
		}
		onEvent()
		return nil
	}, func() error { return nil })
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if finish == nil || tokens < 0 {
		return fmt.Errorf("stream ended early: finish reason %v, usage %v", finish != nil, tokens >= 0)
	}
	return checkEnd(*finish, tokens, maxTokens)
}

// checkEnd: with ignore_eos a complete answer ends at its length.
func checkEnd(finish string, tokens, maxTokens int) error {
	if finish != "length" || tokens != maxTokens {
		return fmt.Errorf("finish %q after %d tokens, want length after max_tokens %d", finish, tokens, maxTokens)
	}
	return nil
}

// load is a closed loop of clients, each sending its next request a
// think time after its last one has ended, alternating plain and
// streamed completions.
type load struct {
	stopped chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	calls   []call
}

func startLoad(base string, clients, maxTokens int, think time.Duration) *load {
	l := &load{stopped: make(chan struct{})}
	for i := range clients {
		l.wg.Go(func() {
			c := newClient(base)
			defer c.close()
			for n := 0; ; n++ {
				if n > 0 {
					select {
					case <-l.stopped:
						return
					case <-time.After(think):
					}
				}
				cl := c.complete((i+n)%2 == 1, prompts[(i+n)%len(prompts)], maxTokens, nil)
				l.mu.Lock()
				l.calls = append(l.calls, cl)
				l.mu.Unlock()
			}
		})
	}
	return l
}

// stop ends the loop (once; later calls only wait): each client
// finishes the request it is in.
func (l *load) stop() []call {
	l.once.Do(func() { close(l.stopped) })
	l.wg.Wait()
	return l.calls
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
