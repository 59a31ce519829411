package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// recursion is a template that recurses without end, which kills a Go
// process that renders it in-process (fatal stack overflow).
const recursion = "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"

// A template that blows a limit on the load-time check refuses the model
// with a message saying so; with --chat-template-fallback the server
// serves ChatML instead and says so in its log.
func TestServeRefusesAFailingChatTemplate(t *testing.T) {
	model := synthWithTemplate(t, recursion)
	var stderr syncBuffer
	e := env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runServeHooked(ctx, []string{"--model", model, "--threads", "1", "--ctx-size", "2048",
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, e, serveHooks{})
	if err == nil || !strings.Contains(err.Error(), "chat template fails") || !strings.Contains(err.Error(), "stack") {
		t.Fatalf("serve = %v, want a refusal naming the chat template and its stack limit", err)
	}

	var log syncBuffer
	httpAddr, _ := startServeEnv(t, serveHooks{}, env{stdout: io.Discard, stderr: &log, getenv: func(string) string { return "" }},
		"--model", model, "--chat-template-fallback")
	if !strings.Contains(log.String(), "ChatML fallback") {
		t.Errorf("no fallback warning in the log:\n%s", log.String())
	}
	if code, body := chatStatus(t, httpAddr, "hello"); code != 200 {
		t.Errorf("chat on the fallback: %d %s", code, body)
	}
}

// A template that passes the check but blows a limit on some request
// fails that request with a 500 naming the limit; the server lives on
// and the next request is served. The worker that ran away is killed, so
// no CPU stays busy after the client has its answer.
func TestServeSurvivesAChatTemplateThatBlowsUp(t *testing.T) {
	tpl := "{% for m in messages %}{% set c = m['content'] %}" +
		"{% if c == 'recurse' %}{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}{% endif %}" +
		"{% if c == 'huge' %}{{ 'x' * 100000000000 }}{% endif %}" +
		"{% if c == 'spin' %}{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{% endif %}{% endfor %}" +
		"{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
	// The time limit leaves room for the other limits to strike first,
	// also in race-detector builds, where the stack grows slowly.
	httpAddr, _ := startServe(t, "--model", synthWithTemplate(t, tpl), "--chat-template-timeout", "4s")
	for _, tt := range []struct{ content, want string }{
		{"recurse", "stack"},
		{"huge", "memory"},
		{"spin", "longer than its limit"},
	} {
		start := time.Now()
		code, body := chatStatus(t, httpAddr, tt.content)
		var e struct {
			Error struct{ Message, Code string }
		}
		json.Unmarshal([]byte(body), &e)
		if code != 500 || e.Error.Code != "chat_template_failed" || !strings.Contains(e.Error.Message, tt.want) {
			t.Errorf("%s: %d %s, want 500 chat_template_failed naming %q", tt.content, code, body, tt.want)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s: answered after %v", tt.content, d)
		}
		if code, body := chatStatus(t, httpAddr, "hello"); code != 200 {
			t.Fatalf("after %s: %d %s", tt.content, code, body)
		}
	}
}

func chatStatus(t *testing.T, httpAddr, content string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": content}}, "max_tokens": 2})
	resp, err := http.Post("http://"+httpAddr+"/v1/chat/completions", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
