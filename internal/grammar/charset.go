package grammar

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// rrange is an inclusive range of code points.
type rrange struct{ lo, hi rune }

const maxRune = unicode.MaxRune

// normalize sorts and merges ranges, so that set operations can walk them.
func normalize(rs []rrange) []rrange {
	if len(rs) == 0 {
		return nil
	}
	s := append([]rrange(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	out := []rrange{s[0]}
	for _, r := range s[1:] {
		last := &out[len(out)-1]
		if r.lo <= last.hi+1 {
			if r.hi > last.hi {
				last.hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// complement returns the code points in [0, maxRune] not in rs.
func complement(rs []rrange) []rrange {
	var out []rrange
	next := rune(0)
	for _, r := range normalize(rs) {
		if r.lo > next {
			out = append(out, rrange{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= maxRune {
		out = append(out, rrange{next, maxRune})
	}
	return out
}

// subtract removes the code points of sub from each range of rs, keeping
// rs's order (so a class renders in the order its author wrote it).
func subtract(rs []rrange, sub []rrange) []rrange {
	sub = normalize(sub)
	var out []rrange
	for _, r := range rs {
		lo := r.lo
		for _, s := range sub {
			if s.hi < lo || s.lo > r.hi {
				continue
			}
			if s.lo > lo {
				out = append(out, rrange{lo, s.lo - 1})
			}
			lo = s.hi + 1
			if lo > r.hi {
				break
			}
		}
		if lo <= r.hi {
			out = append(out, rrange{lo, r.hi})
		}
	}
	return out
}

// intersect returns the code points in both a and b, sorted.
func intersect(a, b []rrange) []rrange {
	a, b = normalize(a), normalize(b)
	var out []rrange
	for _, x := range a {
		for _, y := range b {
			lo, hi := max(x.lo, y.lo), min(x.hi, y.hi)
			if lo <= hi {
				out = append(out, rrange{lo, hi})
			}
		}
	}
	return out
}

// jsonSpecials are the code points a JSON string cannot hold unescaped.
var jsonSpecials = []rrange{{0, 0x1f}, {'"', '"'}, {'\\', '\\'}}

// classBody renders ranges for the inside of a GBNF [...] class.
func classBody(rs []rrange, negated bool) string {
	var sb strings.Builder
	for i, r := range rs {
		first, last := i == 0, i == len(rs)-1
		if r.lo == r.hi {
			sb.WriteString(classChar(r.lo, first && !negated, first || last))
			continue
		}
		sb.WriteString(classChar(r.lo, first && !negated, false))
		sb.WriteByte('-')
		sb.WriteString(classChar(r.hi, false, false))
	}
	return sb.String()
}

// classChar spells one code point inside a GBNF class. GBNF has no escape
// for '^' or '-', so those become \x5E and \x2D where they would otherwise
// be read as negation or a range.
func classChar(r rune, leading, dashOK bool) string {
	switch {
	case r == '\\':
		return `\\`
	case r == ']':
		return `\]`
	case r == '[':
		return `\[`
	case r == '^' && leading:
		return `\x5E`
	case r == '-' && !dashOK:
		return `\x2D`
	case r == '\n':
		return `\n`
	case r == '\r':
		return `\r`
	case r == '\t':
		return `\t`
	case r < 0x20 || r >= 0x7f && r <= 0xff && !unicode.IsPrint(r):
		return fmt.Sprintf(`\x%02X`, r)
	case r >= 0xd800 && r <= 0xdfff || !unicode.IsPrint(r) && r != ' ':
		if r <= 0xffff {
			return fmt.Sprintf(`\u%04X`, r)
		}
		return fmt.Sprintf(`\U%08X`, r)
	}
	return string(r)
}

// renderClass renders a GBNF class matching the given code points (or all
// but them, when negated).
func renderClass(rs []rrange, negated bool) string {
	if negated {
		return "[^" + classBody(rs, true) + "]"
	}
	return "[" + classBody(rs, false) + "]"
}

// jsonClass renders GBNF for the JSON-string spelling of one character out
// of a set: the set's ordinary characters as a class, plus the escape
// sequences of any quote, backslash or control character the set contains.
// It returns the alternatives (none when the set is empty).
func jsonClass(items []rrange, negated bool) []string {
	var parts []string
	var specials []rrange
	if negated {
		excl := normalize(append(append([]rrange(nil), items...), jsonSpecials...))
		if len(excl) != 1 || excl[0].lo != 0 || excl[0].hi != maxRune {
			parts = append(parts, renderClass(excl, true))
		}
		specials = subtract(normalize(jsonSpecials), items)
	} else {
		if p := subtract(items, jsonSpecials); len(p) > 0 {
			parts = append(parts, renderClass(p, false))
		}
		specials = intersect(items, jsonSpecials)
	}
	return append(parts, jsonEscapeAlternatives(specials)...)
}

// jsonEscapeAlternatives renders the JSON escape sequences of the code
// points in rs (all of which are quote, backslash or control characters).
func jsonEscapeAlternatives(rs []rrange) []string {
	var short []rune         // characters after '\' in two-character escapes
	var long [2][]rrange     // low hex digits of \u000X and \u001X
	short1 := map[rune]rune{ // code point -> escape letter
		'"': '"', '\\': '\\', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't',
	}
	for _, r := range normalize(rs) {
		for c := r.lo; c <= r.hi; c++ {
			if l, ok := short1[c]; ok {
				short = append(short, l)
			} else if c < 0x20 {
				d := rune("0123456789abcdef"[c&15])
				long[c>>4] = append(long[c>>4], rrange{d, d})
			}
		}
	}
	var out []string
	switch len(short) {
	case 0:
	case 1:
		out = append(out, Literal(`\`+string(short[0])))
	default:
		var sb strings.Builder
		sb.WriteString(`"\\" [`)
		for _, l := range short {
			if l == '\\' {
				sb.WriteString(`\\`)
			} else {
				sb.WriteRune(l)
			}
		}
		sb.WriteString("]")
		out = append(out, sb.String())
	}
	for hi, lows := range long {
		if len(lows) == 0 {
			continue
		}
		if len(lows) == 1 {
			out = append(out, fmt.Sprintf(`"\\u00%d%c"`, hi, lows[0].lo))
			continue
		}
		out = append(out, fmt.Sprintf(`"\\u00%d" `, hi)+renderClass(normalize(lows), false))
	}
	return out
}
