package traceanalyze

import (
	"cmp"
	"slices"
	"time"
)

// Queueing explains why a request queued: the requests that held the
// slots while it waited, and in which phase each spent that time. Every
// request in a slot is one that has left its queue, so those whose
// prefill or decode overlaps the wait are what it waited for.
type Queueing struct {
	TraceID string `json:"trace_id"`
	Request string `json:"request"`
	Wait    Dur    `json:"queue_ms"`
	// Holders overlap the wait, the longest overlap first.
	Holders []Holder `json:"holders"`
}

// Holder is a request that held a slot while another waited.
type Holder struct {
	TraceID string `json:"trace_id"`
	Request string `json:"request"`
	// Prefill and Decode are how much of the wait the holder spent in
	// each phase.
	Prefill Dur `json:"prefill_overlap_ms"`
	Decode  Dur `json:"decode_overlap_ms"`
}

// overlap is the length of [a0, a1] ∩ [b0, b1].
func overlap(a0, a1, b0, b1 time.Time) time.Duration {
	return max(0, earlier(a1, b1).Sub(later(a0, b0)))
}

// queueing explains the wait of trace id's first request; nil when it
// has none or did not queue.
func (r *Report) queueing(id string) *Queueing {
	i := slices.IndexFunc(r.RequestList, func(q Request) bool { return q.TraceID == id })
	if i < 0 || r.RequestList[i].Queue <= 0 {
		return nil
	}
	q := r.RequestList[i]
	// The phases tile the request: prepare, queue, prefill, decode.
	waitFrom := q.Start.Add(q.Prepare.Std())
	waitTo := waitFrom.Add(q.Queue.Std())
	out := &Queueing{TraceID: q.TraceID, Request: q.Name, Wait: q.Queue}
	for j, o := range r.RequestList {
		if j == i {
			continue
		}
		prefillFrom := o.Start.Add((o.Prepare + o.Queue).Std())
		decodeFrom := prefillFrom.Add(o.Prefill.Std())
		h := Holder{
			TraceID: o.TraceID, Request: o.Name,
			Prefill: Dur(overlap(waitFrom, waitTo, prefillFrom, decodeFrom)),
			Decode:  Dur(overlap(waitFrom, waitTo, decodeFrom, decodeFrom.Add(o.Decode.Std()))),
		}
		if h.Prefill+h.Decode > 0 {
			out.Holders = append(out.Holders, h)
		}
	}
	slices.SortFunc(out.Holders, func(a, b Holder) int {
		return cmp.Or(cmp.Compare(b.Prefill+b.Decode, a.Prefill+a.Decode), cmp.Compare(a.TraceID, b.TraceID))
	})
	return out
}
