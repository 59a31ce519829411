package grammar

import (
	"math"
	"strconv"
	"strings"
)

// Integer bounds become digit-by-digit alternatives, following llama.cpp's
// _build_min_max_int so that the emitted text is the same where llama.cpp's
// is right (see atLeast and atLeastTail for where it is not). A side
// without a bound keeps the digit limit of the plain integer rule (16
// digits), which is what keeps sampling finite.

const (
	noMin = math.MinInt64
	noMax = math.MaxInt64
)

type intRange struct {
	sb strings.Builder
}

func (w *intRange) digitRange(from, to byte) {
	w.sb.WriteByte('[')
	w.sb.WriteByte(from)
	if from != to {
		w.sb.WriteByte('-')
		w.sb.WriteByte(to)
	}
	w.sb.WriteByte(']')
}

// moreDigits writes [0-9]{lo,hi}; hi == math.MaxInt means unbounded.
func (w *intRange) moreDigits(lo, hi int) {
	w.sb.WriteString("[0-9]")
	if lo == hi && lo == 1 {
		return
	}
	w.sb.WriteByte('{')
	w.sb.WriteString(strconv.Itoa(lo))
	if hi != lo {
		w.sb.WriteByte(',')
		if hi != math.MaxInt {
			w.sb.WriteString(strconv.Itoa(hi))
		}
	}
	w.sb.WriteByte('}')
}

// uniformRange matches the numbers from..to, both spelled with the same
// number of digits.
func (w *intRange) uniformRange(from, to string) {
	i := 0
	for i < len(from) && i < len(to) && from[i] == to[i] {
		i++
	}
	if i > 0 {
		w.sb.WriteString(`"` + from[:i] + `"`)
	}
	if i >= len(from) || i >= len(to) {
		return
	}
	if i > 0 {
		w.sb.WriteByte(' ')
	}
	subLen := len(from) - i - 1
	if subLen == 0 {
		w.sb.WriteString("[" + from[i:i+1] + "-" + to[i:i+1] + "]")
		return
	}
	fromSub, toSub := from[i+1:], to[i+1:]
	zeros, nines := strings.Repeat("0", subLen), strings.Repeat("9", subLen)
	toReached := false
	w.sb.WriteByte('(')
	if fromSub == zeros {
		w.digitRange(from[i], to[i]-1)
		w.sb.WriteByte(' ')
		w.moreDigits(subLen, subLen)
	} else {
		w.sb.WriteString("[" + from[i:i+1] + "] (")
		w.uniformRange(fromSub, nines)
		w.sb.WriteByte(')')
		if from[i] < to[i]-1 {
			w.sb.WriteString(" | ")
			if toSub == nines {
				w.digitRange(from[i]+1, to[i])
				toReached = true
			} else {
				w.digitRange(from[i]+1, to[i]-1)
			}
			w.sb.WriteByte(' ')
			w.moreDigits(subLen, subLen)
		}
	}
	if !toReached {
		w.sb.WriteString(" | ")
		w.digitRange(to[i], to[i])
		w.sb.WriteByte(' ')
		w.uniformRange(zeros, toSub)
	}
	w.sb.WriteByte(')')
}

// build writes alternatives matching the integers in [lo, hi]; lo == noMin
// or hi == noMax leave that side open. topLevel is false inside a number
// whose leading digit has been written already.
func (w *intRange) build(lo, hi int64, decimalsLeft int, topLevel bool) {
	hasMin, hasMax := lo != noMin, hi != noMax
	if hasMin && hasMax {
		if lo < 0 && hi < 0 {
			w.sb.WriteString(`"-" (`)
			w.build(-hi, -lo, decimalsLeft, true)
			w.sb.WriteByte(')')
			return
		}
		if lo < 0 {
			w.sb.WriteString(`"-" (`)
			w.build(0, -lo, decimalsLeft, true)
			w.sb.WriteString(") | ")
			lo = 0
		}
		loS, hiS := strconv.FormatInt(lo, 10), strconv.FormatInt(hi, 10)
		for digits := len(loS); digits < len(hiS); digits++ {
			w.uniformRange(loS, strings.Repeat("9", digits))
			loS = "1" + strings.Repeat("0", digits)
			w.sb.WriteString(" | ")
		}
		w.uniformRange(loS, hiS)
		return
	}
	lessDecimals := max(decimalsLeft-1, 1)
	if hasMin {
		if lo < 0 {
			w.sb.WriteString(`"-" (`)
			w.build(noMin, -lo, decimalsLeft, false)
			w.sb.WriteString(") | [0] | [1-9] ")
			w.moreDigits(0, decimalsLeft-1)
			return
		}
		w.atLeast(lo, decimalsLeft)
		return
	}
	// hasMax only (build is never called with neither)
	if hi >= 0 {
		if topLevel {
			w.sb.WriteString(`"-" [1-9] `)
			w.moreDigits(0, lessDecimals)
			w.sb.WriteString(" | ")
		}
		w.build(0, hi, decimalsLeft, true)
	} else {
		// llama.cpp writes the magnitude here with leading zeros allowed
		// ("-05"), which is not JSON; ours has none.
		w.sb.WriteString(`"-" (`)
		w.atLeast(-hi, decimalsLeft)
		w.sb.WriteByte(')')
	}
}

// atLeast writes the numbers >= lo (lo >= 0) of at most decimalsLeft
// digits, without leading zeros.
func (w *intRange) atLeast(lo int64, decimalsLeft int) {
	lessDecimals := max(decimalsLeft-1, 1)
	switch {
	case lo == 0:
		w.sb.WriteString("[0] | [1-9] ")
		w.moreDigits(0, lessDecimals)
	case lo <= 9:
		c := byte('0' + lo)
		if c > '1' {
			w.digitRange('1', c-1)
			w.sb.WriteByte(' ')
			w.moreDigits(1, lessDecimals)
			w.sb.WriteString(" | ")
		}
		w.digitRange(c, '9')
		w.sb.WriteByte(' ')
		w.moreDigits(0, lessDecimals)
	default:
		loS := strconv.FormatInt(lo, 10)
		n, c := len(loS), loS[0]
		if c > '1' {
			w.digitRange('1', c-1)
			w.sb.WriteByte(' ')
			w.moreDigits(n, lessDecimals)
			w.sb.WriteString(" | ")
		}
		w.digitRange(c, c)
		w.sb.WriteString(" (")
		w.atLeastTail(loS[1:], lessDecimals)
		w.sb.WriteByte(')')
		if c < '9' {
			w.sb.WriteString(" | ")
			w.digitRange(c+1, '9')
			w.sb.WriteByte(' ')
			w.moreDigits(n-1, lessDecimals)
		}
	}
}

// atLeastTail writes the digit strings (leading zeros allowed: they follow
// a leading digit) of len(t) to maxDigits digits that are longer than t or,
// as long, not below it. llama.cpp recurses on the tail's value instead,
// losing its leading zeros (so that its "minimum": 100 admits 11); the text
// is the same where it was right.
func (w *intRange) atLeastTail(t string, maxDigits int) {
	k := len(t)
	lessDecimals := max(maxDigits-1, 1)
	if strings.Trim(t, "0") == "" {
		w.moreDigits(k, maxDigits)
		return
	}
	c := t[0]
	if k == 1 {
		w.digitRange('0', c-1)
		w.sb.WriteByte(' ')
		w.moreDigits(1, lessDecimals)
		w.sb.WriteString(" | ")
		w.digitRange(c, '9')
		w.sb.WriteByte(' ')
		w.moreDigits(0, lessDecimals)
		return
	}
	if c > '0' {
		w.digitRange('0', c-1)
		w.sb.WriteByte(' ')
		w.moreDigits(k, lessDecimals)
		w.sb.WriteString(" | ")
	}
	w.digitRange(c, c)
	w.sb.WriteString(" (")
	w.atLeastTail(t[1:], lessDecimals)
	w.sb.WriteByte(')')
	if c < '9' {
		w.sb.WriteString(" | ")
		w.digitRange(c+1, '9')
		w.sb.WriteByte(' ')
		w.moreDigits(k-1, lessDecimals)
	}
}

// intRangeBody returns the rule body for integers in [lo, hi] (noMin/noMax
// for an open side).
func intRangeBody(lo, hi int64) string {
	var w intRange
	w.sb.WriteByte('(')
	w.build(lo, hi, 16, true)
	w.sb.WriteString(") space")
	return w.sb.String()
}
