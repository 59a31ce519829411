package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar draws "label  42% [=====     ]" on a terminal, redrawing in
// place; elsewhere (logs, pipes) it prints a line at each 25% step.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	tty   bool
	last  int
	start time.Time
}

func newProgressBar(w io.Writer, label string, tty bool) *progressBar {
	return &progressBar{w: w, label: label, tty: tty, last: -1, start: time.Now()}
}

// Set records progress as a fraction in [0, 1].
func (p *progressBar) Set(frac float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pct := int(frac * 100)
	pct = min(max(pct, 0), 100)
	if pct == p.last {
		return
	}
	if p.tty {
		const width = 30
		fill := pct * width / 100
		fmt.Fprintf(p.w, "\r%s %3d%% [%s%s]", p.label, pct, strings.Repeat("=", fill), strings.Repeat(" ", width-fill))
		if pct == 100 {
			fmt.Fprintf(p.w, " %.1fs\n", time.Since(p.start).Seconds())
		}
	} else if pct/25 != p.last/25 || (p.last < 0) {
		fmt.Fprintf(p.w, "%s %d%%\n", p.label, pct)
	}
	p.last = pct
}
