package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SIGTERM under load: the real binary drains, and every in-flight request
// either completes or ends with a clear error — none hangs.
func TestSIGTERMUnderLoad(t *testing.T) {
	root, _ := filepath.Abs(repoRoot(t))
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "bin", "lumen"), "serve", "--cache-dir", dir, "--threads", "1",
		"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--parallel", "2", "--drain-timeout", "300ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bin/lumen (make test builds it): %v", err)
	}
	exited := make(chan error, 1)
	addrs := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=listening http=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	var httpAddr string
	select {
	case httpAddr = <-addrs:
	case err := <-exited:
		t.Fatalf("serve exited early: %v", err)
	}
	base := "http://" + httpAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("server never became ready")
		}
		time.Sleep(20 * time.Millisecond) // polling an external process's readiness
	}

	// Two requests run, four wait: more work than the drain allows.
	const n = 6
	client := &http.Client{Timeout: 30 * time.Second}
	started := make(chan struct{}, n)
	outcomes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(base+"/generate", "application/json",
				strings.NewReader(`{"prompt":"tell me a very long story","max_tokens":500,"temperature":0,"stream":true}`))
			if err != nil {
				started <- struct{}{}
				outcomes[i] = "transport error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			started <- struct{}{}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				outcomes[i] = "status " + resp.Status + " " + string(b)
				return
			}
			dec := json.NewDecoder(resp.Body)
			for {
				var line map[string]any
				if err := dec.Decode(&line); err != nil {
					outcomes[i] = "stream ended without a final line: " + err.Error()
					return
				}
				if fr, ok := line["finish_reason"]; ok {
					outcomes[i] = "finished: " + fr.(string)
					return
				}
				if e, ok := line["error"]; ok {
					b, _ := json.Marshal(e)
					outcomes[i] = "error: " + string(b)
					return
				}
			}
		}()
	}
	for range n {
		<-started
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("requests hung after SIGTERM: %q", outcomes)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exit: %v", err)
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		t.Fatal("server did not exit after SIGTERM")
	}
	t.Logf("outcomes: %q", outcomes)
	clear := 0
	for i, o := range outcomes {
		switch {
		case strings.HasPrefix(o, "finished: "):
		case strings.HasPrefix(o, "error: ") && strings.Contains(o, "shut"):
			clear++
		default:
			t.Errorf("request %d: %s", i, o)
		}
	}
	if clear == 0 {
		t.Error("no request was cut short by the 300ms drain: the test did not exercise shutdown")
	}
}
