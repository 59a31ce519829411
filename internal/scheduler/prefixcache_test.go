package scheduler

import (
	"context"
	"testing"
	"testing/synctest"
)

// checkRun generates r and checks that the text is what the fake model
// produces for the prompt alone, whatever cells were reused.
func checkRun(t *testing.T, s *Scheduler, r Request) Result {
	t.Helper()
	text, res, err := generate(t, s, context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if want := expectText(r.Prompt, r.MaxTokens); text != want {
		t.Errorf("prompt %q: text %q, want %q (cells reused wrongly: %s, %d tokens)", string(rune(r.Prompt[0])), text, want, res.CacheSource, res.CachedTokens)
	}
	return res
}

// A prompt whose prefix another slot holds — even one still decoding —
// shares those cells instead of computing them again.
func TestPrefixSharedAcrossSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := newFakeEngine(2, 512, 64)
		eng.gate = make(chan struct{})
		s := start(t, eng, Config{})
		base := "You are a helpful assistant. Question: "
		a, err := s.Submit(context.Background(), Request{Prompt: tokens(base + "one?"), MaxTokens: 20})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		eng.gate <- struct{}{} // a's prompt runs; it is decoding now
		synctest.Wait()
		promptB := tokens(base + "two?")
		b, err := s.Submit(context.Background(), Request{Prompt: promptB, MaxTokens: 6})
		if err != nil {
			t.Fatal(err)
		}
		close(eng.gate)
		if _, _, err := collect(t, a); err != nil {
			t.Fatal(err)
		}
		text, res, err := collect(t, b)
		if err != nil {
			t.Fatal(err)
		}
		if res.CacheSource != CacheShared || res.CachedTokens != len(base) || res.Slot != 1 {
			t.Errorf("b: source %q, %d cached tokens, slot %d; want shared, %d, slot 1", res.CacheSource, res.CachedTokens, res.Slot, len(base))
		}
		if want := expectText(promptB, 6); text != want {
			t.Errorf("b with shared cells: %q, want %q", text, want)
		}
		if eng.copies != 1 {
			t.Errorf("%d copies, want 1", eng.copies)
		}
	})
}

// An unrelated prompt takes an empty slot rather than evicting a cached
// prefix; when every slot holds something, the one released longest ago
// goes.
func TestSlotChoiceKeepsUsefulCaches(t *testing.T) {
	s := start(t, newFakeEngine(2, 512, 64), Config{})
	pa := tokens("alpha alpha alpha alpha")
	if res := checkRun(t, s, Request{Prompt: pa, MaxTokens: 3}); res.Slot != 0 {
		t.Fatalf("first request in slot %d", res.Slot)
	}
	if res := checkRun(t, s, Request{Prompt: tokens("bravo bravo bravo"), MaxTokens: 3}); res.Slot != 1 {
		t.Errorf("an unrelated prompt took slot %d, evicting a cached prefix while slot 1 was empty", res.Slot)
	}
	res := checkRun(t, s, Request{Prompt: pa, MaxTokens: 3})
	if res.Slot != 0 || res.CacheSource != CacheSlot || res.CachedTokens != len(pa)-1 {
		t.Errorf("repeat: slot %d source %q cached %d; want slot 0, slot cache, %d", res.Slot, res.CacheSource, res.CachedTokens, len(pa)-1)
	}
	// Slot 1 (bravo) was released before slot 0 (alpha, again): it goes.
	if res := checkRun(t, s, Request{Prompt: tokens("charlie charlie"), MaxTokens: 3}); res.Slot != 1 {
		t.Errorf("with both slots cached, slot %d was evicted; want 1, released longest ago", res.Slot)
	}
	// A prefix shorter than minReuse (one shared letter) is not a hit.
	if res := checkRun(t, s, Request{Prompt: tokens("axe"), MaxTokens: 3}); res.CachedTokens != 0 || res.CacheSource != CacheNone {
		t.Errorf("one shared token counted as a hit: %d tokens from %q", res.CachedTokens, res.CacheSource)
	}
}

// With a host cache, a prefix evicted from the only slot is saved and
// restored for a later prompt that starts with it; a state that fails to
// load costs the reuse, not the request.
func TestHostCacheRestoresEvictedPrefix(t *testing.T) {
	eng := newFakeEngine(1, 512, 64)
	s := start(t, eng, Config{HostCacheBytes: 1 << 20})
	pa := tokens("the quick brown fox jumps over the lazy dog")
	checkRun(t, s, Request{Prompt: pa, MaxTokens: 5})
	checkRun(t, s, Request{Prompt: tokens("an unrelated prompt of some length"), MaxTokens: 5})
	if eng.saves != 1 {
		t.Fatalf("%d saves, want 1: the first prompt's cells when the slot was reused", eng.saves)
	}
	st := s.Stats()
	if st.HostCacheEntries != 1 || st.HostCacheBytes < int64(4*len(pa)) {
		t.Errorf("stats %+v: want one entry of at least %d bytes", st, 4*len(pa))
	}
	pb := append(tokens("the quick brown fox jumps over the lazy dog"), tokens(", twice")...)
	res := checkRun(t, s, Request{Prompt: pb, MaxTokens: 5})
	if res.CacheSource != CacheHost || res.CachedTokens != len(pa) {
		t.Errorf("restored: source %q, %d tokens; want host, %d", res.CacheSource, res.CachedTokens, len(pa))
	}
	if res.Timings.CacheRestored.Before(res.Timings.Admitted) {
		t.Errorf("cache restored %v before admission %v", res.Timings.CacheRestored, res.Timings.Admitted)
	}
	// The unrelated prompt went to host memory in turn; make its load fail.
	eng.failLoad = true
	res = checkRun(t, s, Request{Prompt: tokens("an unrelated prompt of some length"), MaxTokens: 5})
	if res.CacheSource != CacheNone || res.CachedTokens != 0 {
		t.Errorf("after a failed load: source %q, %d tokens; want none, 0", res.CacheSource, res.CachedTokens)
	}
}

// NoCache requests and a scheduler without prefix caching compute every
// prompt token, and save nothing to host memory.
func TestNoCacheComputesEverything(t *testing.T) {
	eng := newFakeEngine(1, 512, 64)
	s := start(t, eng, Config{HostCacheBytes: 1 << 20})
	p := tokens("a prompt long enough to be worth saving")
	checkRun(t, s, Request{Prompt: p, MaxTokens: 4})
	if res := checkRun(t, s, Request{Prompt: p, MaxTokens: 4, NoCache: true}); res.CachedTokens != 0 {
		t.Errorf("NoCache request reused %d tokens", res.CachedTokens)
	}

	eng = newFakeEngine(1, 512, 64)
	s = start(t, eng, Config{HostCacheBytes: 1 << 20, NoPrefixCache: true})
	checkRun(t, s, Request{Prompt: p, MaxTokens: 4})
	checkRun(t, s, Request{Prompt: tokens("something else entirely, also long"), MaxTokens: 4})
	if res := checkRun(t, s, Request{Prompt: p, MaxTokens: 4}); res.CachedTokens != 0 || eng.saves != 0 {
		t.Errorf("without prefix caching: %d tokens reused, %d saves", res.CachedTokens, eng.saves)
	}
}

// Saved states are freed when the host cache evicts them and when the
// scheduler stops: they may be C memory, which no collector reclaims.
func TestHostCacheFreesStates(t *testing.T) {
	eng := newFakeEngine(1, 512, 64)
	// Room for about two saved prompts of this size.
	s, err := New(eng, Config{HostCacheBytes: 2 * 8 * 60})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for i := range 6 {
		p := tokens(string(rune('a'+i)) + " prompt that is long enough to be saved")
		checkRun(t, s, Request{Prompt: p, MaxTokens: 4})
	}
	eng.mu.Lock()
	live, saves := eng.liveStates, eng.saves
	eng.mu.Unlock()
	if st := s.Stats(); saves < 5 || live != st.HostCacheEntries || live > 2 {
		t.Errorf("%d saves, %d states alive, %d entries: evicted states must be freed", saves, live, st.HostCacheEntries)
	}
	cancel()
	<-done
	if eng.liveStates != 0 {
		t.Errorf("%d states alive after the scheduler stopped", eng.liveStates)
	}
}
