package toolcall

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// A small GBNF recogniser, for the tests only: it parses llama.cpp's
// grammar syntax (rules, literals, character classes, ., groups,
// alternatives, * + ? and {m,n}) and tells whether a grammar's root
// matches a whole string. It computes the set of positions where each
// node can end (memoised per rule and position), so ambiguous grammars
// cost polynomial, not exponential, time.

type gkind int

const (
	gLit gkind = iota
	gClass
	gAny
	gRef
	gSeq
	gAlt
	gRep
)

type gnode struct {
	kind   gkind
	lit    []rune
	ranges [][2]rune
	neg    bool
	ref    string
	kids   []*gnode
	min    int
	max    int // -1: no limit
}

type gtoken struct {
	kind string // "id", "::=", "lit", "class", or the punctuation itself
	text string
	node *gnode
}

type gbnf struct {
	rules map[string]*gnode
}

func parseGBNF(src string) (*gbnf, error) {
	toks, err := tokenizeGBNF([]rune(src))
	if err != nil {
		return nil, err
	}
	p := &gparser{toks: toks}
	g := &gbnf{rules: map[string]*gnode{}}
	for p.i < len(p.toks) {
		name := p.toks[p.i]
		if name.kind != "id" || p.i+1 >= len(p.toks) || p.toks[p.i+1].kind != "::=" {
			return nil, fmt.Errorf("token %d: want a rule definition, got %q", p.i, name.text)
		}
		p.i += 2
		body, err := p.alt()
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", name.text, err)
		}
		if _, dup := g.rules[name.text]; dup {
			return nil, fmt.Errorf("rule %s defined twice", name.text)
		}
		g.rules[name.text] = body
	}
	if g.rules["root"] == nil {
		return nil, fmt.Errorf("no root rule")
	}
	for name, n := range g.rules {
		if err := g.checkRefs(n); err != nil {
			return nil, fmt.Errorf("rule %s: %w", name, err)
		}
	}
	return g, nil
}

func (g *gbnf) checkRefs(n *gnode) error {
	if n.kind == gRef && g.rules[n.ref] == nil {
		return fmt.Errorf("undefined rule %s", n.ref)
	}
	for _, k := range n.kids {
		if err := g.checkRefs(k); err != nil {
			return err
		}
	}
	return nil
}

func isGBNFName(r rune) bool {
	return r == '-' || r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

func tokenizeGBNF(s []rune) ([]gtoken, error) {
	var toks []gtoken
	for i := 0; i < len(s); {
		r := s[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case isGBNFName(r):
			j := i
			for j < len(s) && isGBNFName(s[j]) {
				j++
			}
			toks = append(toks, gtoken{kind: "id", text: string(s[i:j])})
			i = j
		case r == ':':
			if i+2 >= len(s) || string(s[i:i+3]) != "::=" {
				return nil, fmt.Errorf("offset %d: stray ':'", i)
			}
			toks = append(toks, gtoken{kind: "::=", text: "::="})
			i += 3
		case r == '"':
			var lit []rune
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated literal")
				}
				if s[i] == '"' {
					i++
					break
				}
				c, n, err := gbnfChar(s[i:])
				if err != nil {
					return nil, err
				}
				lit = append(lit, c)
				i += n
			}
			toks = append(toks, gtoken{kind: "lit", node: &gnode{kind: gLit, lit: lit}})
		case r == '[':
			n := &gnode{kind: gClass}
			i++
			if i < len(s) && s[i] == '^' {
				n.neg = true
				i++
			}
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated character class")
				}
				if s[i] == ']' {
					i++
					break
				}
				lo, k, err := gbnfChar(s[i:])
				if err != nil {
					return nil, err
				}
				i += k
				hi := lo
				if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
					hi, k, err = gbnfChar(s[i+1:])
					if err != nil {
						return nil, err
					}
					i += 1 + k
				}
				n.ranges = append(n.ranges, [2]rune{lo, hi})
			}
			toks = append(toks, gtoken{kind: "class", node: n})
		case r == '{':
			j := i
			for j < len(s) && s[j] != '}' {
				j++
			}
			if j == len(s) {
				return nil, fmt.Errorf("unterminated {")
			}
			toks = append(toks, gtoken{kind: "{", text: string(s[i+1 : j])})
			i = j + 1
		case strings.ContainsRune(".()|*+?", r):
			toks = append(toks, gtoken{kind: string(r), text: string(r)})
			i++
		default:
			return nil, fmt.Errorf("offset %d: unexpected %q", i, r)
		}
	}
	return toks, nil
}

// gbnfChar reads one possibly escaped character of a literal or class.
func gbnfChar(s []rune) (rune, int, error) {
	if s[0] != '\\' {
		return s[0], 1, nil
	}
	if len(s) < 2 {
		return 0, 0, fmt.Errorf("dangling backslash")
	}
	switch s[1] {
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case '\\', '"', '[', ']', '-', '^':
		return s[1], 2, nil
	case 'x', 'u', 'U':
		n := map[rune]int{'x': 2, 'u': 4, 'U': 8}[s[1]]
		if len(s) < 2+n {
			return 0, 0, fmt.Errorf("short \\%c escape", s[1])
		}
		v, err := strconv.ParseUint(string(s[2:2+n]), 16, 32)
		if err != nil {
			return 0, 0, err
		}
		return rune(v), 2 + n, nil
	}
	return 0, 0, fmt.Errorf("unknown escape \\%c", s[1])
}

type gparser struct {
	toks []gtoken
	i    int
}

// atRuleEnd: the end of the input, or the next rule's "name ::=".
func (p *gparser) atRuleEnd() bool {
	return p.i >= len(p.toks) || p.toks[p.i].kind == "id" && p.i+1 < len(p.toks) && p.toks[p.i+1].kind == "::="
}

func (p *gparser) alt() (*gnode, error) {
	var alts []*gnode
	for {
		seq, err := p.seq()
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if p.i < len(p.toks) && p.toks[p.i].kind == "|" {
			p.i++
			continue
		}
		return &gnode{kind: gAlt, kids: alts}, nil
	}
}

func (p *gparser) seq() (*gnode, error) {
	n := &gnode{kind: gSeq}
	for !p.atRuleEnd() && p.toks[p.i].kind != "|" && p.toks[p.i].kind != ")" {
		item, err := p.primary()
		if err != nil {
			return nil, err
		}
		for p.i < len(p.toks) {
			t := p.toks[p.i]
			min, max := -1, -1
			switch t.kind {
			case "*":
				min, max = 0, -1
			case "+":
				min, max = 1, -1
			case "?":
				min, max = 0, 1
			case "{":
				lo, hi, found := strings.Cut(t.text, ",")
				var err error
				if min, err = strconv.Atoi(strings.TrimSpace(lo)); err != nil {
					return nil, fmt.Errorf("bad repetition {%s}", t.text)
				}
				switch {
				case !found:
					max = min
				case strings.TrimSpace(hi) == "":
					max = -1
				default:
					if max, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
						return nil, fmt.Errorf("bad repetition {%s}", t.text)
					}
				}
			}
			if min < 0 {
				break
			}
			item = &gnode{kind: gRep, kids: []*gnode{item}, min: min, max: max}
			p.i++
		}
		n.kids = append(n.kids, item)
	}
	return n, nil
}

func (p *gparser) primary() (*gnode, error) {
	t := p.toks[p.i]
	p.i++
	switch t.kind {
	case "id":
		return &gnode{kind: gRef, ref: t.text}, nil
	case "lit", "class":
		return t.node, nil
	case ".":
		return &gnode{kind: gAny}, nil
	case "(":
		n, err := p.alt()
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.toks) || p.toks[p.i].kind != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.i++
		return n, nil
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}

// matcher runs one match of a grammar against one input.
type matcher struct {
	g    *gbnf
	in   []rune
	memo map[string][]int
}

func (g *gbnf) match(s string) bool {
	m := &matcher{g: g, in: []rune(s), memo: map[string][]int{}}
	for _, e := range m.ends(&gnode{kind: gRef, ref: "root"}, 0) {
		if e == len(m.in) {
			return true
		}
	}
	return false
}

// ends is the sorted set of positions where n, starting at pos, can end.
func (m *matcher) ends(n *gnode, pos int) []int {
	switch n.kind {
	case gLit:
		if pos+len(n.lit) <= len(m.in) && string(m.in[pos:pos+len(n.lit)]) == string(n.lit) {
			return []int{pos + len(n.lit)}
		}
		return nil
	case gAny:
		if pos < len(m.in) {
			return []int{pos + 1}
		}
		return nil
	case gClass:
		if pos >= len(m.in) {
			return nil
		}
		r, in := m.in[pos], false
		for _, rg := range n.ranges {
			if rg[0] <= r && r <= rg[1] {
				in = true
			}
		}
		if in != n.neg {
			return []int{pos + 1}
		}
		return nil
	case gRef:
		key := n.ref + "@" + strconv.Itoa(pos)
		if e, ok := m.memo[key]; ok {
			return e
		}
		m.memo[key] = nil // left recursion matches nothing
		e := m.ends(m.g.rules[n.ref], pos)
		m.memo[key] = e
		return e
	case gSeq:
		cur := []int{pos}
		for _, k := range n.kids {
			var next []int
			for _, p := range cur {
				next = append(next, m.ends(k, p)...)
			}
			cur = uniq(next)
			if len(cur) == 0 {
				return nil
			}
		}
		return cur
	case gAlt:
		var all []int
		for _, k := range n.kids {
			all = append(all, m.ends(k, pos)...)
		}
		return uniq(all)
	case gRep:
		// Once past min, a position already reached adds nothing (and
		// leaving it out ends an unbounded repetition).
		var out []int
		seen := map[int]bool{}
		if n.min == 0 {
			out, seen[pos] = []int{pos}, true
		}
		cur := []int{pos}
		for i := 1; n.max < 0 || i <= n.max; i++ {
			var next []int
			for _, p := range cur {
				for _, e := range m.ends(n.kids[0], p) {
					if i > n.min && seen[e] {
						continue
					}
					next = append(next, e)
				}
			}
			cur = uniq(next)
			if len(cur) == 0 {
				break
			}
			if i >= n.min {
				for _, e := range cur {
					seen[e] = true
				}
				out = append(out, cur...)
			}
		}
		return uniq(out)
	}
	panic("unknown node")
}

func uniq(a []int) []int {
	if len(a) < 2 {
		return a
	}
	sort.Ints(a)
	out := a[:1]
	for _, v := range a[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

// The recogniser itself, on hand-written grammars.
func TestGBNFRecogniser(t *testing.T) {
	const g = `
# comment
root ::= greet (sep greet)* "!"?
greet ::= ("hi" | "hello") " " name
name ::= [A-Z] [a-z]{1,3}
sep ::= "," space
space ::= | " " | "\n"{1,2} [ \t]{0,2}
`
	tests := []struct {
		in   string
		want bool
	}{
		{"hi Bob", true},
		{"hello Ann!", true},
		{"hi Bob, hello Ann", true},
		{"hi Bob,\n\n\thi Al", true},
		{"hi Bob,\n\n\n hi Al", false},
		{"hi Bobby", false},
		{"hi bob", false},
		{"hi B", false},
		{"hey Bob", false},
		{"hi Bob,", false},
		{"", false},
	}
	gr, err := parseGBNF(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := gr.match(tt.in); got != tt.want {
			t.Errorf("match(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{`root ::= x`, `foo ::= "a"`, `root ::= "a`, `root ::= [a`} {
		if _, err := parseGBNF(bad); err == nil {
			t.Errorf("parseGBNF(%q) succeeded", bad)
		}
	}
	neg, err := parseGBNF(`root ::= [^"\\\x00-\x1F]+ "\u00e9" "\U0001F680" .`)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]bool{"abé🚀x": true, "a\"bé🚀x": false, "a\tbé🚀x": false, "é🚀x": false} {
		if got := neg.match(in); got != want {
			t.Errorf("negated class: match(%q) = %v, want %v", in, got, want)
		}
	}
}
