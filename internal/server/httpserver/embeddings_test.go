package httpserver

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"
)

func TestEmbeddings(t *testing.T) {
	ts, fake := serve(t, Config{})
	type reply struct {
		Object string `json:"object"`
		Model  string `json:"model"`
		Data   []struct {
			Object    string          `json:"object"`
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	for _, tt := range []struct {
		body   string
		inputs string // the inputs the API got, as text/len(tokens)
	}{
		{`{"input":"hello"}`, "[hello/0]"},
		{`{"input":["a","bb"],"model":"test-model","encoding_format":"float","dimensions":2}`, "[a/0 bb/0]"},
		{`{"input":[5,6,7]}`, "[/3]"},
		{`{"input":[[5],[6,7]],"user":"u"}`, "[/1 /2]"},
	} {
		resp := do(t, ts, "POST", "/v1/embeddings", tt.body)
		var got reply
		decodeStrict(t, resp.body, &got)
		fake.mu.Lock()
		last := fake.embeds[len(fake.embeds)-1]
		fake.mu.Unlock()
		var in []string
		for _, x := range last.Inputs {
			in = append(in, fmt.Sprintf("%s/%d", x.Text, len(x.Tokens)))
		}
		if resp.status != 200 || fmt.Sprint(in) != tt.inputs || got.Object != "list" || got.Model != fakeModel || len(got.Data) != len(in) ||
			got.Usage.PromptTokens != 5 || got.Usage.TotalTokens != 5 {
			t.Errorf("%s: status %d inputs %v, reply %s", tt.body, resp.status, in, resp.body)
			continue
		}
		for i, d := range got.Data {
			var v []float32
			if d.Object != "embedding" || d.Index != i || json.Unmarshal(d.Embedding, &v) != nil || len(v) != 2 || v[0] != float32(i) {
				t.Errorf("%s: data %d = %+v", tt.body, i, d)
			}
		}
	}

	// base64: little-endian float32s, as the openai SDKs decode them.
	resp := do(t, ts, "POST", "/v1/embeddings", `{"input":["a","bcd"],"encoding_format":"base64"}`)
	var got reply
	decodeStrict(t, resp.body, &got)
	var s string
	if len(got.Data) != 2 || json.Unmarshal(got.Data[1].Embedding, &s) != nil {
		t.Fatalf("base64 reply %s", resp.body)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 8 || math.Float32frombits(binary.LittleEndian.Uint32(b)) != 1 || math.Float32frombits(binary.LittleEndian.Uint32(b[4:])) != 3 {
		t.Errorf("base64 %q (%v) does not decode to [1 3]", s, err)
	}

	for _, tt := range []struct{ body, param string }{
		{`{}`, "input"},
		{`{"input":[]}`, "input"},
		{`{"input":[[1],[]]}`, "input[1]"},
		{`{"input":{"a":1}}`, "input"},
		{`{"input":"a","encoding_format":"int8"}`, "encoding_format"},
		{`{"input":"a","dimensions":1}`, "dimensions"},
	} {
		checkError(t, do(t, ts, "POST", "/v1/embeddings", tt.body), http.StatusBadRequest, tt.param, "")
	}
}
