//go:build scale

package scale

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// The pool and its load.
const (
	pool        = "lumen"
	clients     = 6  // closed loop: 2 per replica
	shortTokens = 16 // a short completion: ~20-50 ms
	// think is each client's pause between requests. It keeps the three
	// single-threaded replicas from saturating two cores: there, the
	// split would measure which replica the kernel gives more CPU (and
	// leastconn rightly favours), not the balancer.
	think = 50 * time.Millisecond
	// longTokens is the stream in flight on the replica that is stopped:
	// a few seconds, longer than HAProxy takes to notice the drain, so
	// that the replica's listener closes only once it is out of the pool.
	longTokens   = 1000
	drainTimeout = 30 * time.Second // ample for the long stream
	// splitPhase is the load before the SIGTERM, over which the split is
	// judged; afterDown is the load kept on the remaining replicas.
	splitPhase = 4 * time.Second
	afterDown  = 1500 * time.Millisecond
)

// Bounds of the assertions.
const (
	// downMargin is what HAProxy may take beyond checkInter × checkFall
	// to mark a draining replica down: the check's own round trip, on
	// two busy cores.
	downMargin = 500 * time.Millisecond
	// lateMargin: a request HAProxy sent just before it marked the
	// replica down may start its span on the replica this much after
	// the test saw the replica down.
	lateMargin     = 200 * time.Millisecond
	splitTolerance = 0.20 // each replica within ±20% of an even share
	// The load must have exercised both phases.
	minBefore, minAfter = 60, 20
)

const (
	serverSpanName  = "POST /v1/completions"
	requestSpanName = "text_completion " + modelName
)

func TestScale(t *testing.T) {
	d := readDeps(t)
	rec := startReceiver(t)
	rs := startReplicas(t, d, replicaConfig{parallel: 4, threads: 1, drainTimeout: drainTimeout, otlpEndpoint: rec.addr},
		"r1", "r2", "r3")
	byName := map[string]*replica{}
	for _, r := range rs {
		byName[r.name] = r
	}
	lb := startHAProxy(t, d, poolOf(pool, rs...))
	t.Logf("3 replicas up behind haproxy at %s; %d clients, %d-token completions", lb.url(pool), clients, shortTokens)

	l := startLoad(lb.url(pool), clients, shortTokens, think)
	// Stopped below; this is for a test that ends early.
	t.Cleanup(func() { l.stop() })
	time.Sleep(splitPhase) // the load runs meanwhile

	// A long stream; the replica it is in flight on is the one stopped.
	longStart := time.Now()
	inFlight := make(chan string, 1)
	longDone := make(chan call, 1)
	go func() {
		c := newClient(lb.url(pool))
		defer c.close()
		longDone <- c.complete(true, prompts[0], longTokens, func(r string) { inFlight <- r })
	}()
	var victim *replica
	select {
	case name := <-inFlight:
		if victim = byName[name]; victim == nil {
			t.Fatalf("the long stream came from replica %q, not one of the pool", name)
		}
	case cl := <-longDone:
		t.Fatalf("the long stream ended before its first event: %v", cl.err)
	case <-time.After(requestDeadline):
		t.Fatal("the long stream sent no event")
	}
	sigterm := time.Now()
	victim.signal(t, syscall.SIGTERM)
	down := waitDown(t, lb, victim.name)
	t.Logf("SIGTERM to %s (long stream in flight on it): haproxy had it DOWN %v later", victim.name, down.Sub(sigterm).Round(time.Millisecond))
	time.Sleep(afterDown) // the load goes on without it

	calls := l.stop()
	var long call
	select {
	case long = <-longDone:
	case <-time.After(requestDeadline):
		t.Fatal("the long stream did not end")
	}
	if err := victim.waitExit(drainTimeout + stopTimeout); err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit status 0 once drained\n%s", victim.name, err, victim.logs)
	}
	logRetries(t, lb, rs)
	stopAll(t, rs) // the others; every replica has exported its spans once it has exited
	lb.stop(t)
	traces := rec.byTrace()
	all := append(calls, long)

	t.Run("no request lost", func(t *testing.T) {
		checkNoLoss(t, all, sigterm)
	})
	t.Run("drained replica leaves the pool", func(t *testing.T) {
		if bound := checkInter*checkFall + downMargin; down.Sub(sigterm) > bound {
			t.Errorf("haproxy marked %s down %v after its SIGTERM, want within %v (inter %v × fall %d + %v)",
				victim.name, down.Sub(sigterm), bound, checkInter, checkFall, downMargin)
		}
		if long.err == nil && (long.replica != victim.name || !long.ended.After(down)) {
			t.Errorf("the long stream ran on %s and ended %v after %s was down; want it in flight on %s past that point (the drain must outlast detection)",
				long.replica, long.ended.Sub(down), victim.name, victim.name)
		}
		checkNothingAfter(t, traces, victim.name, down)
	})
	t.Run("traces continue through haproxy", func(t *testing.T) {
		checkTraces(t, traces, all, rs)
	})
	t.Run("even split before the SIGTERM", func(t *testing.T) {
		checkSplit(t, traces, calls, longStart, rs)
	})
}

// waitDown polls HAProxy's stats until it reports the server DOWN and
// returns when it saw it so.
func waitDown(t *testing.T, lb *haproxy, name string) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := lb.status(pool, name)
		if err == nil && st == "DOWN" {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy still has %s %q (%v) 10s after its SIGTERM\n%s", name, st, err, lb.logs)
		}
		time.Sleep(pollInterval) // polling another process's state
	}
}

// logRetries logs how often HAProxy retried and redispatched, per server.
func logRetries(t *testing.T, lb *haproxy, rs []*replica) {
	t.Helper()
	var parts []string
	for _, r := range rs {
		row, err := lb.server(pool, r.name)
		if err != nil {
			t.Errorf("haproxy stats: %v", err)
			return
		}
		parts = append(parts, fmt.Sprintf("%s: %s requests, %s retries, %s redispatches, status %s",
			r.name, row["stot"], row["wretr"], row["wredis"], row["status"]))
	}
	t.Logf("haproxy: %s", strings.Join(parts, "; "))
}

// checkNoLoss: every request sent was answered 200, in full.
func checkNoLoss(t *testing.T, calls []call, sigterm time.Time) {
	var failed []string
	before := 0
	for _, c := range calls {
		if c.err != nil {
			failed = append(failed, fmt.Sprintf("%s (sent %v after the SIGTERM): %v", kindOf(c), c.sent.Sub(sigterm).Round(time.Millisecond), c.err))
		}
		if c.sent.Before(sigterm) {
			before++
		}
	}
	t.Logf("%d requests sent (%d before the SIGTERM, %d after), %d answered in full", len(calls), before, len(calls)-before, len(calls)-len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed, want none; the first: %s", len(failed), len(calls), strings.Join(failed[:min(10, len(failed))], "\n"))
	}
	if before < minBefore || len(calls)-before < minAfter {
		t.Errorf("the load sent %d requests before the SIGTERM and %d after, want at least %d and %d", before, len(calls)-before, minBefore, minAfter)
	}
}

func kindOf(c call) string {
	if c.stream {
		return "stream"
	}
	return "completion"
}

// answered is the span of the attempt that answered a call: its one
// server span with status 200. Others in its trace are attempts refused
// with 503 and retried by HAProxy.
func answered(spans []span) (ok span, retried []span, err error) {
	n := 0
	for _, s := range spans {
		if s.kind != tracepb.Span_SPAN_KIND_SERVER {
			continue
		}
		switch s.status {
		case 200:
			ok, n = s, n+1
		case 503:
			retried = append(retried, s)
		default:
			return span{}, nil, fmt.Errorf("server span %q on %s with status %d, want 200 or a retried 503", s.name, s.replica, s.status)
		}
	}
	if n != 1 {
		return span{}, nil, fmt.Errorf("%d server spans with status 200 in the trace, want 1", n)
	}
	return ok, retried, nil
}

// checkTraces: each request's trace continues from the client's span
// through HAProxy into the replica that answered; for every replica.
func checkTraces(t *testing.T, traces map[string][]span, calls []call, rs []*replica) {
	var broken []string
	perReplica := map[string]int{}
	retries, answeredCalls := 0, 0
	for _, c := range calls {
		if c.err != nil {
			continue // a lost request: checkNoLoss reports it
		}
		answeredCalls++
		replica, n, err := checkTrace(c, traces[c.traceID])
		if err != nil {
			broken = append(broken, fmt.Sprintf("trace %s: %v", c.traceID, err))
			continue
		}
		perReplica[replica]++
		retries += n
	}
	t.Logf("traces continued per replica: %v; %d attempts refused with 503 and retried elsewhere", perReplica, retries)
	if len(broken) > 0 {
		t.Errorf("%d of %d traces broken; the first: %s", len(broken), answeredCalls, strings.Join(broken[:min(10, len(broken))], "\n"))
	}
	for _, r := range rs {
		if perReplica[r.name] == 0 {
			t.Errorf("no request trace continued into %s", r.name)
		}
	}
}

// checkTrace checks one answered call's trace: the replica's server span
// (and any refused attempt's) is a child of the client's span, on the
// replica HAProxy named, and its request span a child of that. It
// returns the replica and the number of refused attempts.
func checkTrace(c call, spans []span) (string, int, error) {
	ok, retried, err := answered(spans)
	if err != nil {
		return "", 0, err
	}
	for _, s := range append(retried, ok) {
		if s.parentID != c.spanID || s.name != serverSpanName {
			return "", 0, fmt.Errorf("server span %q on %s has parent %q, want the client's span %q (and the name %q)",
				s.name, s.replica, s.parentID, c.spanID, serverSpanName)
		}
	}
	if ok.replica != c.replica {
		return "", 0, fmt.Errorf("answered by %s per its spans, by %q per HAProxy", ok.replica, c.replica)
	}
	if !slices.ContainsFunc(spans, func(s span) bool {
		return s.name == requestSpanName && s.parentID == ok.spanID && s.replica == ok.replica
	}) {
		return "", 0, fmt.Errorf("no request span %q under the server span on %s", requestSpanName, ok.replica)
	}
	return ok.replica, len(retried), nil
}

// checkNothingAfter: once HAProxy had the replica down, no request
// reached it (it was still up, draining the long stream).
func checkNothingAfter(t *testing.T, traces map[string][]span, name string, down time.Time) {
	late, refused := 0, 0
	var first time.Duration
	for _, spans := range traces {
		for _, s := range spans {
			if s.replica != name || s.kind != tracepb.Span_SPAN_KIND_SERVER {
				continue
			}
			if s.status == 503 {
				refused++
			}
			if after := s.start.Sub(down); after > lateMargin {
				if late == 0 || after < first {
					first = after
				}
				late++
			}
		}
	}
	t.Logf("%s refused %d requests while draining (HAProxy retried them elsewhere)", name, refused)
	if late > 0 {
		t.Errorf("%d requests reached %s after haproxy had it down (the first %v after), want none", late, name, first)
	}
}

// checkSplit: before the SIGTERM (and the long stream), each replica
// answered within ±splitTolerance of an even share, counted from its
// spans.
func checkSplit(t *testing.T, traces map[string][]span, calls []call, end time.Time, rs []*replica) {
	counts := map[string]int{}
	total := 0
	for _, c := range calls {
		if !c.sent.Before(end) {
			continue
		}
		if ok, _, err := answered(traces[c.traceID]); err == nil {
			counts[ok.replica]++
			total++
		}
	}
	if total < minBefore {
		t.Fatalf("only %d requests answered before the SIGTERM, want at least %d to judge the split", total, minBefore)
	}
	even := float64(total) / float64(len(rs))
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s %d (%+.1f%%)", r.name, counts[r.name], 100*(float64(counts[r.name])/even-1)))
	}
	t.Logf("split of %d requests: %s", total, strings.Join(parts, ", "))
	for _, r := range rs {
		if dev := float64(counts[r.name])/even - 1; dev > splitTolerance || dev < -splitTolerance {
			t.Errorf("%s answered %d of %d requests, %+.1f%% off an even share, want within ±%.0f%%",
				r.name, counts[r.name], total, 100*dev, 100*splitTolerance)
		}
	}
}
