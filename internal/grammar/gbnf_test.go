package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// A GBNF parser and recogniser for tests. The parser follows llama.cpp's
// (src/llama-grammar.cpp) syntax rules closely enough that a grammar it
// accepts is one llama.cpp would load: names [a-zA-Z0-9-], the same escapes,
// newlines only inside parentheses or after '|', repetition counts at most
// 2000, every referenced rule defined, a root rule, and no left recursion
// (which llama.cpp rejects, or loops on). The recogniser is an Earley parser
// over code points, so ambiguity and empty rules are no problem.

type gElem struct {
	ref    int // rule index, or -1 for a character
	any    bool
	neg    bool
	ranges []rrange
}

type gGrammar struct {
	names   []string
	index   map[string]int
	rules   [][][]gElem // rule -> alternatives -> sequence
	defined []bool
	refPos  map[int]string // first use of each rule, for messages

	nullable []bool
	prods    []gProd
	byLHS    [][]int
}

type gProd struct {
	lhs int
	rhs []gElem
}

type gbnfParser struct {
	src string
	g   *gGrammar
}

func parseGBNF(src string) (*gGrammar, error) {
	g := &gGrammar{index: map[string]int{}, refPos: map[int]string{}}
	p := &gbnfParser{src: src, g: g}
	if err := p.parse(); err != nil {
		return nil, err
	}
	for id, ok := range g.defined {
		if !ok {
			return nil, fmt.Errorf("undefined rule %q (used in %s)", g.names[id], g.refPos[id])
		}
	}
	if _, ok := g.index["root"]; !ok {
		return nil, fmt.Errorf("no root rule")
	}
	g.prepare()
	if err := g.leftRecursion(); err != nil {
		return nil, err
	}
	return g, nil
}

func (p *gbnfParser) errf(pos int, format string, args ...any) error {
	end := min(pos+30, len(p.src))
	return fmt.Errorf("%s at %q", fmt.Sprintf(format, args...), p.src[pos:end])
}

func (p *gbnfParser) symbol(name string, define bool, where string) int {
	g := p.g
	id, ok := g.index[name]
	if !ok {
		id = len(g.names)
		g.index[name] = id
		g.names = append(g.names, name)
		g.rules = append(g.rules, nil)
		g.defined = append(g.defined, false)
	}
	if !define {
		if _, ok := g.refPos[id]; !ok {
			g.refPos[id] = where
		}
	}
	return id
}

// synth adds a generated rule (groups, repetitions).
func (p *gbnfParser) synth(base string, alts [][]gElem) int {
	g := p.g
	id := len(g.names)
	name := fmt.Sprintf("%s_%d", base, id) // '_' cannot clash with real names
	g.index[name] = id
	g.names = append(g.names, name)
	g.rules = append(g.rules, alts)
	g.defined = append(g.defined, true)
	return id
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func (p *gbnfParser) space(pos int, newlineOK bool) int {
	for pos < len(p.src) {
		c := p.src[pos]
		switch {
		case c == ' ' || c == '\t':
			pos++
		case c == '#':
			for pos < len(p.src) && p.src[pos] != '\n' && p.src[pos] != '\r' {
				pos++
			}
		case newlineOK && (c == '\n' || c == '\r'):
			pos++
		default:
			return pos
		}
	}
	return pos
}

func (p *gbnfParser) name(pos int) (string, int, error) {
	start := pos
	for pos < len(p.src) && isWordChar(p.src[pos]) {
		pos++
	}
	if pos == start {
		return "", pos, p.errf(pos, "expecting name")
	}
	return p.src[start:pos], pos, nil
}

func (p *gbnfParser) parse() error {
	pos := p.space(0, true)
	for pos < len(p.src) {
		name, next, err := p.name(pos)
		if err != nil {
			return err
		}
		pos = p.space(next, false)
		if !strings.HasPrefix(p.src[pos:], "::=") {
			return p.errf(pos, "expecting ::=")
		}
		pos = p.space(pos+3, true)
		id := p.symbol(name, true, "")
		if p.g.defined[id] {
			return fmt.Errorf("rule %q defined twice", name)
		}
		alts, next, err := p.alternates(pos, name, false)
		if err != nil {
			return err
		}
		p.g.rules[id] = alts
		p.g.defined[id] = true
		pos = next
		if pos < len(p.src) && p.src[pos] == '\r' {
			pos++
		}
		if pos < len(p.src) && p.src[pos] == '\n' {
			pos++
		} else if pos < len(p.src) {
			return p.errf(pos, "expecting newline or end")
		}
		pos = p.space(pos, true)
	}
	return nil
}

func (p *gbnfParser) alternates(pos int, rule string, nested bool) ([][]gElem, int, error) {
	var alts [][]gElem
	for {
		seq, next, err := p.sequence(pos, rule, nested)
		if err != nil {
			return nil, 0, err
		}
		alts = append(alts, seq)
		pos = next
		if pos < len(p.src) && p.src[pos] == '|' {
			pos = p.space(pos+1, true)
			continue
		}
		return alts, pos, nil
	}
}

func (p *gbnfParser) char(pos int) (rune, int, error) {
	if pos >= len(p.src) {
		return 0, pos, fmt.Errorf("unexpected end of input")
	}
	if p.src[pos] == '\\' {
		if pos+1 >= len(p.src) {
			return 0, pos, fmt.Errorf("unexpected end of input")
		}
		hex := func(n int) (rune, int, error) {
			if pos+2+n > len(p.src) {
				return 0, pos, p.errf(pos, "expecting %d hex chars", n)
			}
			v, err := strconv.ParseUint(p.src[pos+2:pos+2+n], 16, 32)
			if err != nil {
				return 0, pos, p.errf(pos, "expecting %d hex chars", n)
			}
			return rune(v), pos + 2 + n, nil
		}
		switch c := p.src[pos+1]; c {
		case 'x':
			return hex(2)
		case 'u':
			return hex(4)
		case 'U':
			return hex(8)
		case 't':
			return '\t', pos + 2, nil
		case 'r':
			return '\r', pos + 2, nil
		case 'n':
			return '\n', pos + 2, nil
		case '\\', '"', '[', ']':
			return rune(c), pos + 2, nil
		default:
			return 0, pos, p.errf(pos, "unknown escape")
		}
	}
	r, size := utf8.DecodeRuneInString(p.src[pos:])
	return r, pos + size, nil
}

func (p *gbnfParser) sequence(pos int, rule string, nested bool) ([]gElem, int, error) {
	var seq []gElem
	last := -1 // start of the last symbol in seq, for repetition operators
	for pos < len(p.src) {
		c := p.src[pos]
		switch {
		case c == '"':
			pos++
			last = len(seq)
			for pos < len(p.src) && p.src[pos] != '"' {
				r, next, err := p.char(pos)
				if err != nil {
					return nil, 0, err
				}
				seq = append(seq, gElem{ref: -1, ranges: []rrange{{r, r}}})
				pos = next
			}
			if pos >= len(p.src) {
				return nil, 0, fmt.Errorf("unterminated literal in rule %s", rule)
			}
			pos = p.space(pos+1, nested)
		case c == '[':
			pos++
			e := gElem{ref: -1}
			if pos < len(p.src) && p.src[pos] == '^' {
				e.neg = true
				pos++
			}
			for pos < len(p.src) && p.src[pos] != ']' {
				lo, next, err := p.char(pos)
				if err != nil {
					return nil, 0, err
				}
				pos = next
				hi := lo
				if pos+1 < len(p.src) && p.src[pos] == '-' && p.src[pos+1] != ']' {
					hi, pos, err = p.char(pos + 1)
					if err != nil {
						return nil, 0, err
					}
				}
				e.ranges = append(e.ranges, rrange{lo, hi})
			}
			if pos >= len(p.src) {
				return nil, 0, fmt.Errorf("unterminated class in rule %s", rule)
			}
			if len(e.ranges) == 0 {
				// llama.cpp emits no element for [] or [^]; treat it as an error.
				return nil, 0, p.errf(pos, "empty character class")
			}
			last = len(seq)
			seq = append(seq, e)
			pos = p.space(pos+1, nested)
		case isWordChar(c):
			name, next, err := p.name(pos)
			if err != nil {
				return nil, 0, err
			}
			last = len(seq)
			seq = append(seq, gElem{ref: p.symbol(name, false, rule)})
			pos = p.space(next, nested)
		case c == '(':
			pos = p.space(pos+1, true)
			alts, next, err := p.alternates(pos, rule, true)
			if err != nil {
				return nil, 0, err
			}
			pos = next
			if pos >= len(p.src) || p.src[pos] != ')' {
				return nil, 0, p.errf(pos, "expecting ')'")
			}
			last = len(seq)
			seq = append(seq, gElem{ref: p.synth(rule+"_group", alts)})
			pos = p.space(pos+1, nested)
		case c == '.':
			last = len(seq)
			seq = append(seq, gElem{ref: -1, any: true})
			pos = p.space(pos+1, nested)
		case c == '*' || c == '+' || c == '?' || c == '{':
			lo, hi := 0, -1
			switch c {
			case '+':
				lo = 1
			case '?':
				hi = 1
			}
			pos++
			if c == '{' {
				pos = p.space(pos, nested)
				start := pos
				for pos < len(p.src) && p.src[pos] >= '0' && p.src[pos] <= '9' {
					pos++
				}
				if pos == start {
					return nil, 0, p.errf(pos, "expecting an int")
				}
				lo, _ = strconv.Atoi(p.src[start:pos])
				pos = p.space(pos, nested)
				switch {
				case pos < len(p.src) && p.src[pos] == '}':
					hi = lo
				case pos < len(p.src) && p.src[pos] == ',':
					pos = p.space(pos+1, nested)
					start = pos
					for pos < len(p.src) && p.src[pos] >= '0' && p.src[pos] <= '9' {
						pos++
					}
					if pos > start {
						hi, _ = strconv.Atoi(p.src[start:pos])
					}
					pos = p.space(pos, nested)
					if pos >= len(p.src) || p.src[pos] != '}' {
						return nil, 0, p.errf(pos, "expecting '}'")
					}
				default:
					return nil, 0, p.errf(pos, "expecting ','")
				}
				pos++
				if lo > maxRepetition || hi > maxRepetition {
					return nil, 0, fmt.Errorf("repetition {%d,%d} in rule %s exceeds %d", lo, hi, rule, maxRepetition)
				}
				if hi >= 0 && hi < lo {
					return nil, 0, fmt.Errorf("repetition {%d,%d} in rule %s has max < min", lo, hi, rule)
				}
			}
			pos = p.space(pos, nested)
			if last < 0 || last >= len(seq) {
				return nil, 0, fmt.Errorf("repetition without a preceding symbol in rule %s", rule)
			}
			item := p.synth(rule+"_item", [][]gElem{append([]gElem(nil), seq[last:]...)})
			seq = seq[:last]
			for i := 0; i < lo; i++ {
				seq = append(seq, gElem{ref: item})
			}
			if hi < 0 {
				star := p.synth(rule+"_star", nil)
				p.g.rules[star] = [][]gElem{{{ref: item}, {ref: star}}, {}}
				seq = append(seq, gElem{ref: star})
			} else if hi > lo {
				prev := -1
				for i := 0; i < hi-lo; i++ {
					alt := []gElem{{ref: item}}
					if prev >= 0 {
						alt = append(alt, gElem{ref: prev})
					}
					prev = p.synth(rule+"_opt", [][]gElem{alt, {}})
				}
				seq = append(seq, gElem{ref: prev})
			}
		default:
			return seq, pos, nil
		}
	}
	return seq, pos, nil
}

// prepare flattens rules into productions and computes which may be empty.
func (g *gGrammar) prepare() {
	g.byLHS = make([][]int, len(g.rules))
	for id, alts := range g.rules {
		for _, alt := range alts {
			g.byLHS[id] = append(g.byLHS[id], len(g.prods))
			g.prods = append(g.prods, gProd{id, alt})
		}
	}
	g.nullable = make([]bool, len(g.rules))
	for changed := true; changed; {
		changed = false
		for _, pr := range g.prods {
			if g.nullable[pr.lhs] {
				continue
			}
			all := true
			for _, e := range pr.rhs {
				if e.ref < 0 || !g.nullable[e.ref] {
					all = false
					break
				}
			}
			if all {
				g.nullable[pr.lhs] = true
				changed = true
			}
		}
	}
}

// leftRecursion reports a rule that can reach itself without consuming
// input.
func (g *gGrammar) leftRecursion() error {
	state := make([]int, len(g.rules)) // 0 new, 1 in progress, 2 done
	var stack []string
	var visit func(id int) error
	visit = func(id int) error {
		switch state[id] {
		case 1:
			return fmt.Errorf("left recursion: %s -> %s", strings.Join(stack, " -> "), g.names[id])
		case 2:
			return nil
		}
		state[id] = 1
		stack = append(stack, g.names[id])
		for _, alt := range g.rules[id] {
			for _, e := range alt {
				if e.ref < 0 {
					break
				}
				if err := visit(e.ref); err != nil {
					return err
				}
				if !g.nullable[e.ref] {
					break
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = 2
		return nil
	}
	for id := range g.rules {
		if err := visit(id); err != nil {
			return err
		}
	}
	return nil
}

func (e gElem) matches(r rune) bool {
	if e.any {
		return true
	}
	in := false
	for _, rg := range e.ranges {
		if r >= rg.lo && r <= rg.hi {
			in = true
			break
		}
	}
	return in != e.neg
}

type earleyItem struct{ prod, dot, origin int }

// accepts reports whether rule start derives exactly input.
func (g *gGrammar) accepts(start, input string) bool {
	sid, ok := g.index[start]
	if !ok {
		return false
	}
	in := []rune(input)
	n := len(in)
	sets := make([][]earleyItem, n+1)
	seen := make([]map[earleyItem]bool, n+1)
	waiting := make([]map[int][]earleyItem, n+1) // items expecting rule X at set i
	for i := range sets {
		seen[i] = map[earleyItem]bool{}
		waiting[i] = map[int][]earleyItem{}
	}
	add := func(i int, it earleyItem) {
		if seen[i][it] {
			return
		}
		seen[i][it] = true
		sets[i] = append(sets[i], it)
		if rhs := g.prods[it.prod].rhs; it.dot < len(rhs) && rhs[it.dot].ref >= 0 {
			waiting[i][rhs[it.dot].ref] = append(waiting[i][rhs[it.dot].ref], it)
		}
	}
	for _, p := range g.byLHS[sid] {
		add(0, earleyItem{p, 0, 0})
	}
	for i := 0; i <= n; i++ {
		for j := 0; j < len(sets[i]); j++ {
			it := sets[i][j]
			rhs := g.prods[it.prod].rhs
			if it.dot == len(rhs) {
				lhs := g.prods[it.prod].lhs
				for _, par := range waiting[it.origin][lhs] {
					add(i, earleyItem{par.prod, par.dot + 1, par.origin})
				}
				continue
			}
			e := rhs[it.dot]
			if e.ref >= 0 {
				for _, p := range g.byLHS[e.ref] {
					add(i, earleyItem{p, 0, i})
				}
				if g.nullable[e.ref] {
					add(i, earleyItem{it.prod, it.dot + 1, it.origin})
				}
				continue
			}
			if i < n && e.matches(in[i]) {
				add(i+1, earleyItem{it.prod, it.dot + 1, it.origin})
			}
		}
		if len(sets[i]) == 0 {
			return false
		}
	}
	for _, it := range sets[n] {
		if g.prods[it.prod].lhs == sid && it.origin == 0 && it.dot == len(g.prods[it.prod].rhs) {
			return true
		}
	}
	return false
}

// compile parses a grammar, failing the test if llama.cpp would refuse it.
func compile(t testing.TB, grammar string) *gGrammar {
	t.Helper()
	g, err := parseGBNF(grammar)
	if err != nil {
		t.Fatalf("grammar does not load: %v\n%s", err, grammar)
	}
	return g
}

// checkSamples asserts that root accepts every valid and no invalid sample.
func checkSamples(t *testing.T, g *gGrammar, grammar string, valid, invalid []string) {
	t.Helper()
	for _, s := range valid {
		if !g.accepts("root", s) {
			t.Errorf("rejects valid %q\n%s", s, grammar)
		}
	}
	for _, s := range invalid {
		if g.accepts("root", s) {
			t.Errorf("accepts invalid %q\n%s", s, grammar)
		}
	}
}

// Tests of the recogniser itself, so that the other tests can rely on it.
func TestRecogniser(t *testing.T) {
	g := compile(t, `
# comment
root ::= "a" b* | [x-z]{2,3} "!"? | "(" root ")" | "d" .
b ::= [^a-c\n] | "\x41\u0042"
e ::= "q"
`)
	for s, want := range map[string]bool{
		"a": true, "ad": true, "aAB": true, "aAd\t": true, "ab": false, "a\n": false,
		"xy": true, "xyz!": true, "d\n": true, "dd": true, "d": false, "x": false, "xyzx": false, "((a))": true, "(a": false, "": false,
	} {
		if got := g.accepts("root", s); got != want {
			t.Errorf("accepts(%q) = %v, want %v", s, got, want)
		}
	}
	for _, bad := range []string{
		"root ::= foo",                           // undefined
		"x ::= \"a\"",                            // no root
		"root ::= \"a\"{2001}",                   // too many repetitions
		"root ::= root \"a\" | \"b\"",            // left recursion
		"root ::= x root | \"b\"\nx ::= | \"c\"", // left recursion through an empty rule
		"root ::= (\"a\"*)*",                     // repetition of something empty
		"root ::= \"\\q\"",                       // bad escape
		"root ::= \"a\"\nroot ::= \"b\"",         // defined twice
		"root ::= [a",                            // unterminated
		"root ::= \"a\" \"b\"\n  \"c\"",          // a newline ends the rule
		"root ::= *",                             // nothing to repeat
	} {
		if _, err := parseGBNF(bad); err == nil {
			t.Errorf("parseGBNF(%q) succeeded", bad)
		}
	}
	// Newlines are fine inside parentheses and after '|'.
	g = compile(t, "root ::= (\"a\"\n  \"b\") |\n \"c\"\n")
	if !g.accepts("root", "ab") || !g.accepts("root", "c") {
		t.Error("multi-line rule misparsed")
	}
}
