//go:build scale

package scale

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Health checks: every checkInter, GET /readyz; one failure (a draining
// replica answers 503, a stopped one refuses the connection) takes a
// replica out, two successes put it back.
const (
	checkInter = 500 * time.Millisecond
	checkFall  = 1
	checkRise  = 2
)

// haproxyTemplate is haproxy.cfg. Each pool is a frontend on a listening
// socket the test passes in (fd@N, so no port is guessed) and a backend
// of replicas.
//
// Retries. A retried request runs again on another replica ("option
// redispatch 1": every retry changes server), so only failures where no
// replica ran the request are retried, and each is safe for that reason:
//
//   - conn-failure: the connection to the replica could not be made (a
//     stopped replica refuses it), so the request was never sent.
//   - 503: Lumen answers 503 only for work it did not do: while loading
//     or draining (refused before it is queued), or, once a drain has
//     run out of --drain-timeout, for a request it cancelled before
//     answering anything. Nothing was returned to anyone, and a
//     completion changes no state, so running it elsewhere is the
//     client's request answered once. A 503 HAProxy makes itself (no
//     replica up) is not a replica's answer and is not retried.
//
// Not retried, on purpose: empty-response and junk-response (a replica
// that received the request may have been running it when it died; a
// request that crashes replicas would be replayed on each in turn),
// response-timeout (a slow generation is still running: a retry doubles
// its cost, under exactly the load that made it slow), and 429 (the
// queue is full: back-pressure for the client, not a failover). Once a
// replica has sent its response headers (a stream has started), nothing
// is retried at all.
//
// Retrying needs the whole request in HAProxy's buffer
// (http-buffer-request; completion bodies are far below tune.bufsize).
// http-server-close gives each request its own server connection, which
// a replica closes after its answer: no idle connection to a draining
// replica is left to be reused (and lost) as it shuts down, and
// leastconn counts exactly the requests in flight.
//
// A drain that ends before HAProxy's next check closes the replica's
// listener while HAProxy may still pick it: a refused connection is
// retried (conn-failure), but one caught in the accept backlog is reset
// after the request was sent, an empty-response, not retried. So a
// replica should go on draining for at least checkInter × checkFall plus
// a check's round trip (in production, a pre-stop delay); in the test,
// the long stream on it does.
//
// traceparent and
// tracestate pass through untouched (HAProxy adds no span of its own),
// so a replica's server span is a child of the client's span.
const haproxyTemplate = `global
	maxconn 4096
	stats socket {{.StatsSocket}} mode 600 level operator

defaults
	mode http
	timeout connect 1s
	timeout client 60s
	timeout server 60s
	timeout check 1s
	timeout http-request 10s
	timeout http-keep-alive 60s
	option http-server-close
	option http-buffer-request
	retries 3
	option redispatch 1
	retry-on conn-failure 503
	default-server check inter {{.CheckInterMS}}ms fall {{.CheckFall}} rise {{.CheckRise}}
{{range .Pools}}
frontend {{.Name}}
	bind fd@{{.FD}}
	default_backend {{.Name}}

backend {{.Name}}
	balance leastconn
	option httpchk
	http-check send meth GET uri /readyz
	http-check expect status 200
	# Names the replica that answered, to compare with its spans.
	http-response set-header X-Lumen-Replica %[srv_name]
{{- range .Servers}}
	server {{.Name}} {{.Addr}}{{end}}
{{end}}`

// lbPool is a frontend and its backend of replicas.
type lbPool struct {
	Name    string
	Servers []lbServer
	FD      int // set by startHAProxy
	addr    string
}

type lbServer struct{ Name, Addr string }

func poolOf(name string, rs ...*replica) lbPool {
	p := lbPool{Name: name}
	for _, r := range rs {
		p.Servers = append(p.Servers, lbServer{r.name, r.httpAddr})
	}
	return p
}

// haproxy is the running load balancer.
type haproxy struct {
	*proc
	socket string
	pools  map[string]*lbPool
}

// startHAProxy writes haproxy.cfg for pools and runs haproxy in the
// foreground (-db), then waits until every server is up.
func startHAProxy(t *testing.T, d deps, pools ...lbPool) *haproxy {
	t.Helper()
	dir := t.TempDir()
	h := &haproxy{socket: filepath.Join(dir, "stats.sock"), pools: map[string]*lbPool{}}
	cmd := exec.Command(d.haproxy, "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	for i := range pools {
		// Listening sockets made here and inherited by haproxy: fds 3,
		// 4, ... in the child.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := lis.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		_ = lis.Close() // the child's copy stays open
		t.Cleanup(func() { f.Close() })
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		pools[i].FD, pools[i].addr = 3+i, lis.Addr().String()
		h.pools[pools[i].Name] = &pools[i]
	}
	var cfg strings.Builder
	err := template.Must(template.New("haproxy.cfg").Parse(haproxyTemplate)).Execute(&cfg, map[string]any{
		"StatsSocket": h.socket, "CheckInterMS": checkInter.Milliseconds(),
		"CheckFall": checkFall, "CheckRise": checkRise, "Pools": pools,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h.proc = startProc(t, "haproxy", cmd, nil)
	t.Cleanup(func() { h.stop(t) })
	deadline := time.Now().Add(startTimeout)
	for _, p := range pools {
		for _, s := range p.Servers {
			for {
				st, err := h.status(p.Name, s.Name)
				if err == nil && st == "UP" {
					break
				}
				if h.done() || time.Now().After(deadline) {
					t.Fatalf("haproxy: %s/%s not UP within %v (status %q, %v)\nconfig:\n%s\nhaproxy output:\n%s",
						p.Name, s.Name, startTimeout, st, err, cfg.String(), h.logs)
				}
				time.Sleep(pollInterval) // polling another process's state
			}
		}
	}
	return h
}

// url is the base URL of a pool's frontend.
func (h *haproxy) url(pool string) string { return "http://" + h.pools[pool].addr }

// stop ends haproxy (SIGTERM: a hard stop) once; later calls do nothing.
func (h *haproxy) stop(t *testing.T) {
	if h.done() {
		return
	}
	h.signal(t, syscall.SIGTERM)
	if err := h.waitExit(stopTimeout); err != nil && !h.done() {
		t.Errorf("haproxy: %v", err)
	}
}

// stats is HAProxy's "show stat": one row per proxy and server, as
// column name → value.
func (h *haproxy) stats() ([]map[string]string, error) {
	c, err := net.DialTimeout("unix", h.socket, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	text, ok := strings.CutPrefix(string(data), "# ")
	if !ok {
		return nil, fmt.Errorf("show stat: %q", data)
	}
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil || len(recs) < 1 {
		return nil, fmt.Errorf("show stat: %v", err)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, col := range recs[0] {
			if i < len(rec) {
				row[col] = rec[i]
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// server is the stats row of one server of a pool.
func (h *haproxy) server(pool, name string) (map[string]string, error) {
	rows, err := h.stats()
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		if row["pxname"] == pool && row["svname"] == name {
			return row, nil
		}
	}
	return nil, fmt.Errorf("show stat: no server %s/%s", pool, name)
}

// status is a server's health as HAProxy sees it: UP, DOWN, "UP 1/2"
// (going down), "DOWN 1/2" (coming up), MAINT...
func (h *haproxy) status(pool, name string) (string, error) {
	row, err := h.server(pool, name)
	if err != nil {
		return "", err
	}
	return row["status"], nil
}
