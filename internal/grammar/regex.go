package grammar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The regular-expression converter parses an ECMAScript-style pattern into a
// small syntax tree and renders that as GBNF. The rendering mirrors
// llama.cpp's (adjacent characters merge into one literal, groups keep their
// parentheses, {m,n} on anything but a single character goes through a
// numbered sub-rule) so that simple patterns give the same text, but the
// parse is a real one: escapes such as \d, classes and nesting come out
// right, and nothing is copied through verbatim.

type rxKind uint8

const (
	rxEmpty  rxKind = iota
	rxChar          // one code point: r
	rxClass         // a set of code points: items (negated: all but them)
	rxDot           // any character but a line terminator
	rxConcat        // subs in sequence
	rxAlt           // one of subs
	rxGroup         // (subs[0]); kept to render the author's parentheses
	rxRepeat        // subs[0] repeated min..max times (max < 0: unbounded)
)

type rxNode struct {
	kind     rxKind
	r        rune
	items    []rrange
	negated  bool
	subs     []*rxNode
	min, max int
}

// line terminators, which '.' does not match (ECMAScript).
var lineTerminators = []rrange{{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}

var (
	digitItems = []rrange{{'0', '9'}}
	wordItems  = []rrange{{'a', 'z'}, {'A', 'Z'}, {'0', '9'}, {'_', '_'}}
	spaceItems = []rrange{{' ', ' '}, {'\t', '\r'}, {0xa0, 0xa0}, {0x1680, 0x1680},
		{0x2000, 0x200a}, {0x2028, 0x2029}, {0x202f, 0x202f}, {0x205f, 0x205f},
		{0x3000, 0x3000}, {0xfeff, 0xfeff}}
)

type rxParser struct {
	src   []rune
	pos   int
	depth int
	nodes int
}

// parseRegex parses pattern, dropping a leading ^ and trailing $ of each
// top-level alternative: the match is always whole-string.
func parseRegex(pattern string) (*rxNode, error) {
	if !utf8.ValidString(pattern) {
		return nil, errors.New("pattern is not valid UTF-8")
	}
	p := &rxParser{src: []rune(pattern)}
	n, err := p.parseAlt(true)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		return nil, fmt.Errorf("unbalanced ')' at offset %d", p.pos)
	}
	return n, nil
}

func (p *rxParser) node(n *rxNode) (*rxNode, error) {
	p.nodes++
	if p.nodes > maxRegexNodes {
		return nil, errors.New("pattern too large")
	}
	return n, nil
}

func (p *rxParser) peek() (rune, bool) {
	if p.pos < len(p.src) {
		return p.src[p.pos], true
	}
	return 0, false
}

func (p *rxParser) parseAlt(top bool) (*rxNode, error) {
	var alts []*rxNode
	for {
		seq, err := p.parseConcat(top)
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if c, ok := p.peek(); ok && c == '|' {
			p.pos++
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return p.node(&rxNode{kind: rxAlt, subs: alts})
}

func (p *rxParser) parseConcat(top bool) (*rxNode, error) {
	var items []*rxNode
	for {
		c, ok := p.peek()
		if !ok || c == '|' || c == ')' {
			break
		}
		if c == '^' {
			if !top || len(items) > 0 {
				return nil, fmt.Errorf("'^' is only supported at the start of the pattern (offset %d)", p.pos)
			}
			p.pos++
			continue
		}
		if c == '$' {
			p.pos++
			if n, ok := p.peek(); top && (!ok || n == '|') {
				continue
			}
			return nil, fmt.Errorf("'$' is only supported at the end of the pattern (offset %d)", p.pos-1)
		}
		atom, err := p.parseAtom()
		if err != nil {
			return nil, err
		}
		atom, err = p.parseQuantifiers(atom)
		if err != nil {
			return nil, err
		}
		items = append(items, atom)
	}
	switch len(items) {
	case 0:
		return p.node(&rxNode{kind: rxEmpty})
	case 1:
		return items[0], nil
	}
	return p.node(&rxNode{kind: rxConcat, subs: items})
}

// quantifier parses {m}, {m,} or {m,n} at p.pos; ok is false (and p.pos
// unchanged) if the text there is not one, in which case '{' is a literal
// character, as in ECMAScript's web-compatible syntax.
func (p *rxParser) quantifier() (lo, hi int, ok bool, err error) {
	i := p.pos + 1
	digits := func() string {
		start := i
		for i < len(p.src) && p.src[i] >= '0' && p.src[i] <= '9' {
			i++
		}
		return string(p.src[start:i])
	}
	loS, hiS, comma := digits(), "", false
	if loS == "" {
		return 0, 0, false, nil
	}
	if i < len(p.src) && p.src[i] == ',' {
		i++
		comma = true
		hiS = digits()
	}
	if i >= len(p.src) || p.src[i] != '}' {
		return 0, 0, false, nil
	}
	count := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n > maxRepetition {
			return 0, fmt.Errorf("repetition count %s exceeds %d", s, maxRepetition)
		}
		return n, nil
	}
	if lo, err = count(loS); err != nil {
		return 0, 0, false, err
	}
	switch {
	case !comma:
		hi = lo
	case hiS == "":
		hi = -1
	default:
		if hi, err = count(hiS); err != nil {
			return 0, 0, false, err
		}
		if hi < lo {
			return 0, 0, false, fmt.Errorf("repetition {%d,%d} has max below min", lo, hi)
		}
	}
	p.pos = i + 1
	return lo, hi, true, nil
}

func (p *rxParser) parseQuantifiers(atom *rxNode) (*rxNode, error) {
	quantified := false
	for {
		c, ok := p.peek()
		if !ok {
			return atom, nil
		}
		lo, hi := 0, 0
		switch c {
		case '*':
			lo, hi = 0, -1
			p.pos++
		case '+':
			lo, hi = 1, -1
			p.pos++
		case '?':
			lo, hi = 0, 1
			p.pos++
		case '{':
			l, h, ok, err := p.quantifier()
			if err != nil {
				return nil, err
			}
			if !ok {
				return atom, nil
			}
			lo, hi = l, h
		default:
			return atom, nil
		}
		if quantified {
			return nil, fmt.Errorf("nothing to repeat at offset %d", p.pos-1)
		}
		quantified = true
		if c, ok := p.peek(); ok && c == '?' {
			p.pos++ // lazy: same language
		}
		var err error
		atom, err = p.node(&rxNode{kind: rxRepeat, subs: []*rxNode{atom}, min: lo, max: hi})
		if err != nil {
			return nil, err
		}
	}
}

func (p *rxParser) parseAtom() (*rxNode, error) {
	c := p.src[p.pos]
	switch c {
	case '(':
		p.pos++
		if c, ok := p.peek(); ok && c == '?' {
			rest := string(p.src[p.pos:min(p.pos+3, len(p.src))])
			switch {
			case strings.HasPrefix(rest, "?:"):
				p.pos += 2
			case strings.HasPrefix(rest, "?<") && !strings.HasPrefix(rest, "?<=") && !strings.HasPrefix(rest, "?<!"):
				end := p.pos + 2
				for end < len(p.src) && p.src[end] != '>' {
					end++
				}
				if end >= len(p.src) {
					return nil, errors.New("unterminated group name")
				}
				p.pos = end + 1
			default:
				return nil, fmt.Errorf("unsupported group syntax (%s...) (lookaround and flags are not supported)", rest)
			}
		}
		p.depth++
		if p.depth > maxRegexDepth {
			return nil, errors.New("groups nested too deeply")
		}
		inner, err := p.parseAlt(false)
		if err != nil {
			return nil, err
		}
		p.depth--
		if c, ok := p.peek(); !ok || c != ')' {
			return nil, errors.New("missing ')'")
		}
		p.pos++
		return p.node(&rxNode{kind: rxGroup, subs: []*rxNode{inner}})
	case '[':
		return p.parseClass()
	case '.':
		p.pos++
		return p.node(&rxNode{kind: rxDot})
	case '\\':
		return p.parseEscape()
	case '*', '+', '?':
		return nil, fmt.Errorf("nothing to repeat at offset %d", p.pos)
	case '{':
		if _, _, ok, err := p.quantifier(); err != nil || ok {
			return nil, fmt.Errorf("nothing to repeat at offset %d", p.pos)
		}
	}
	p.pos++
	return p.node(&rxNode{kind: rxChar, r: c})
}

// parseEscape parses an escape outside a class.
func (p *rxParser) parseEscape() (*rxNode, error) {
	r, items, negated, err := p.escape(false)
	if err != nil {
		return nil, err
	}
	if items != nil {
		return p.node(&rxNode{kind: rxClass, items: append([]rrange(nil), items...), negated: negated})
	}
	return p.node(&rxNode{kind: rxChar, r: r})
}

// escape parses the escape at p.pos ('\' included): either one code point,
// or (items non-nil) a class escape such as \d, negated for \D.
func (p *rxParser) escape(inClass bool) (r rune, items []rrange, negated bool, err error) {
	p.pos++
	c, ok := p.peek()
	if !ok {
		return 0, nil, false, errors.New(`pattern ends with '\'`)
	}
	p.pos++
	switch c {
	case 'd', 'D':
		return 0, digitItems, c == 'D', nil
	case 'w', 'W':
		return 0, wordItems, c == 'W', nil
	case 's', 'S':
		return 0, spaceItems, c == 'S', nil
	case 't':
		return '\t', nil, false, nil
	case 'n':
		return '\n', nil, false, nil
	case 'r':
		return '\r', nil, false, nil
	case 'v':
		return '\v', nil, false, nil
	case 'f':
		return '\f', nil, false, nil
	case '0':
		if n, ok := p.peek(); ok && n >= '0' && n <= '9' {
			return 0, nil, false, errors.New("octal escapes are not supported")
		}
		return 0, nil, false, nil
	case 'b':
		if inClass {
			return '\b', nil, false, nil
		}
		return 0, nil, false, errors.New(`word boundaries (\b) are not supported`)
	case 'B':
		return 0, nil, false, errors.New(`word boundaries (\B) are not supported`)
	case 'c':
		if n, ok := p.peek(); ok && (n >= 'a' && n <= 'z' || n >= 'A' && n <= 'Z') {
			p.pos++
			return n % 32, nil, false, nil
		}
		return 0, nil, false, errors.New(`invalid \c escape`)
	case 'x':
		v, err := p.hex(2)
		return v, nil, false, err
	case 'u':
		if n, ok := p.peek(); ok && n == '{' {
			end := p.pos + 1
			for end < len(p.src) && p.src[end] != '}' {
				end++
			}
			if end >= len(p.src) {
				return 0, nil, false, errors.New(`unterminated \u{...} escape`)
			}
			v, err := strconv.ParseUint(string(p.src[p.pos+1:end]), 16, 32)
			if err != nil || v > maxRune {
				return 0, nil, false, errors.New(`invalid \u{...} escape`)
			}
			p.pos = end + 1
			return rune(v), nil, false, nil
		}
		v, err := p.hex(4)
		if err != nil {
			return 0, nil, false, err
		}
		// A surrogate pair spelled as two escapes is one code point.
		if v >= 0xd800 && v <= 0xdbff && p.pos+1 < len(p.src) && p.src[p.pos] == '\\' && p.src[p.pos+1] == 'u' {
			save := p.pos
			p.pos += 2
			if lo, err := p.hex(4); err == nil && lo >= 0xdc00 && lo <= 0xdfff {
				return (v-0xd800)<<10 + (lo - 0xdc00) + 0x10000, nil, false, nil
			}
			p.pos = save
		}
		return v, nil, false, nil
	case 'p', 'P':
		return 0, nil, false, errors.New(`unicode property escapes (\p) are not supported`)
	case 'k':
		return 0, nil, false, errors.New(`named backreferences (\k) are not supported`)
	}
	if c >= '1' && c <= '9' {
		return 0, nil, false, errors.New("backreferences are not supported")
	}
	return c, nil, false, nil // identity escape: \. \/ \- \\ ...
}

func (p *rxParser) hex(n int) (rune, error) {
	if p.pos+n > len(p.src) {
		return 0, errors.New("truncated hex escape")
	}
	v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
	if err != nil {
		return 0, errors.New("invalid hex escape")
	}
	p.pos += n
	return rune(v), nil
}

func (p *rxParser) parseClass() (*rxNode, error) {
	p.pos++ // '['
	n := &rxNode{kind: rxClass}
	if c, ok := p.peek(); ok && c == '^' {
		n.negated = true
		p.pos++
	}
	// one class member: a code point, or a class escape's ranges
	member := func() (rune, []rrange, error) {
		c := p.src[p.pos]
		if c == '\\' {
			r, items, neg, err := p.escape(true)
			if items != nil && neg {
				items = complement(items)
			}
			return r, items, err
		}
		p.pos++
		return c, nil, nil
	}
	for {
		c, ok := p.peek()
		if !ok {
			return nil, errors.New("missing ']'")
		}
		if c == ']' {
			p.pos++
			break
		}
		lo, loItems, err := member()
		if err != nil {
			return nil, err
		}
		if loItems != nil {
			n.items = append(n.items, loItems...)
			continue
		}
		// a range lo-hi, unless '-' is last or follows/precedes a class escape
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			save := p.pos
			p.pos++
			hi, hiItems, err := member()
			if err != nil {
				return nil, err
			}
			if hiItems != nil {
				// [a-\d]: '-' is literal
				n.items = append(n.items, rrange{lo, lo}, rrange{'-', '-'})
				n.items = append(n.items, hiItems...)
				continue
			}
			if hi < lo {
				p.pos = save
				return nil, fmt.Errorf("class range out of order: %q-%q", lo, hi)
			}
			n.items = append(n.items, rrange{lo, hi})
			continue
		}
		n.items = append(n.items, rrange{lo, lo})
	}
	if len(n.items) > maxRegexNodes {
		return nil, errors.New("class too large")
	}
	if !n.negated && len(n.items) == 0 {
		return nil, errors.New("empty class [] matches nothing")
	}
	return p.node(n)
}

// nullable reports whether n matches the empty string.
func (n *rxNode) nullable() bool {
	switch n.kind {
	case rxEmpty:
		return true
	case rxChar, rxClass, rxDot:
		return false
	case rxConcat:
		for _, s := range n.subs {
			if !s.nullable() {
				return false
			}
		}
		return true
	case rxAlt:
		for _, s := range n.subs {
			if s.nullable() {
				return true
			}
		}
		return false
	case rxGroup:
		return n.subs[0].nullable()
	default: // rxRepeat
		return n.min == 0 || n.subs[0].nullable()
	}
}

// nonEmpty returns a node matching what n matches except the empty string,
// or nil if n matches nothing else. It exists because GBNF repetition of
// something that may be empty is left-recursive, which llama.cpp rejects:
// (X)* is rewritten as (X minus the empty string)*, the same language.
func nonEmpty(n *rxNode, budget *int) *rxNode {
	*budget--
	if *budget < 0 {
		return nil
	}
	if !n.nullable() {
		return n
	}
	switch n.kind {
	case rxGroup:
		s := nonEmpty(n.subs[0], budget)
		if s == nil {
			return nil
		}
		return &rxNode{kind: rxGroup, subs: []*rxNode{s}}
	case rxAlt:
		var alts []*rxNode
		for _, s := range n.subs {
			if s2 := nonEmpty(s, budget); s2 != nil {
				alts = append(alts, s2)
			}
		}
		switch len(alts) {
		case 0:
			return nil
		case 1:
			return alts[0]
		}
		return &rxNode{kind: rxAlt, subs: alts}
	case rxConcat:
		// Every item may be empty; a non-empty match has a first item
		// that contributes something.
		var alts []*rxNode
		for i, s := range n.subs {
			s2 := nonEmpty(s, budget)
			if s2 == nil {
				continue
			}
			*budget -= len(n.subs) - i // the copies below; their rendering repeats the suffix
			rest := append([]*rxNode{s2}, n.subs[i+1:]...)
			if len(rest) == 1 {
				alts = append(alts, s2)
			} else {
				alts = append(alts, &rxNode{kind: rxConcat, subs: rest})
			}
		}
		switch len(alts) {
		case 0:
			return nil
		case 1:
			return alts[0]
		}
		return &rxNode{kind: rxGroup, subs: []*rxNode{{kind: rxAlt, subs: alts}}}
	case rxRepeat:
		// X{m,n} with X nullable, or X{0,n}: the non-empty matches are
		// those of X'{1,n}, X' being X's non-empty matches.
		s := nonEmpty(n.subs[0], budget)
		if s == nil || n.max == 0 {
			return nil
		}
		if n.max == 1 {
			return s
		}
		return &rxNode{kind: rxRepeat, subs: []*rxNode{s}, min: 1, max: n.max}
	}
	return nil // rxEmpty
}

// fixRepeats applies nonEmpty under every unbounded repetition.
func fixRepeats(n *rxNode, budget *int) (*rxNode, error) {
	for i, s := range n.subs {
		f, err := fixRepeats(s, budget)
		if err != nil {
			return nil, err
		}
		n.subs[i] = f
	}
	if n.kind == rxRepeat && n.max < 0 && n.subs[0].nullable() {
		s := nonEmpty(n.subs[0], budget)
		if *budget < 0 {
			return nil, errors.New("pattern too large")
		}
		if s == nil {
			return &rxNode{kind: rxEmpty}, nil
		}
		return &rxNode{kind: rxRepeat, subs: []*rxNode{s}, min: 0, max: -1}, nil
	}
	return n, nil
}

// rxRenderer renders a syntax tree as GBNF. In JSON mode the text is what
// appears between the quotes of a JSON string, so characters that JSON must
// escape are matched in their escaped spelling.
type rxRenderer struct {
	b       *Builder
	name    string            // rule name of the pattern; sub-rules are name-1, name-2, ...
	json    bool              // render for the inside of a JSON string
	subRule map[string]string // body -> sub-rule name, for {m,n}
	err     error
}

// regexBody converts pattern into the body of a GBNF rule (sub-rules are
// added to b).
func (b *Builder) regexBody(pattern, name string, jsonMode bool) (string, error) {
	tree, err := parseRegex(pattern)
	if err != nil {
		return "", err
	}
	budget := maxRegexNodes
	if tree, err = fixRepeats(tree, &budget); err != nil {
		return "", err
	}
	r := &rxRenderer{b: b, name: name, json: jsonMode, subRule: map[string]string{}}
	out := r.render(tree)
	if r.err != nil {
		return "", r.err
	}
	return out, nil
}

func (r *rxRenderer) literal(runes []rune) string {
	if !r.json {
		return Literal(string(runes))
	}
	var sb strings.Builder
	for _, c := range runes {
		sb.WriteString(jsonEscapeRune(c))
	}
	return Literal(sb.String())
}

func (r *rxRenderer) render(n *rxNode) string {
	if r.err == nil && r.b.tooBig() {
		r.err = errors.New("grammar too large")
	}
	if r.err != nil {
		return ""
	}
	switch n.kind {
	case rxEmpty:
		return ""
	case rxChar:
		return r.literal([]rune{n.r})
	case rxClass:
		return r.class(n.items, n.negated)
	case rxDot:
		body := r.class(lineTerminators, true)
		if r.err != nil {
			return ""
		}
		if r.json { // a rule body needs no parentheses around its alternatives
			body = strings.Join(jsonClass(lineTerminators, true), " | ")
		}
		return r.b.addRule("dot", body)
	case rxGroup:
		return "(" + r.render(n.subs[0]) + ")"
	case rxAlt:
		parts := make([]string, len(n.subs))
		for i, s := range n.subs {
			parts[i] = emptyLiteral(r.render(s))
		}
		return strings.Join(parts, " | ")
	case rxConcat:
		var parts []string
		var lit []rune
		flush := func() {
			if len(lit) > 0 {
				parts = append(parts, r.literal(lit))
				lit = nil
			}
		}
		for _, s := range n.subs {
			if s.kind == rxChar {
				lit = append(lit, s.r)
				continue
			}
			flush()
			t := r.render(s)
			if s.kind == rxAlt {
				t = "(" + t + ")"
			}
			if t != "" {
				parts = append(parts, t)
			}
		}
		flush()
		return strings.Join(parts, " ")
	default: // rxRepeat
		return r.repeat(n)
	}
}

func (r *rxRenderer) class(items []rrange, negated bool) string {
	if r.json {
		parts := jsonClass(items, negated)
		switch len(parts) {
		case 0:
			r.err = errors.New("class matches no character")
			return ""
		case 1:
			return parts[0]
		}
		return "(" + strings.Join(parts, " | ") + ")"
	}
	if negated && len(items) == 0 {
		return `[\U00000000-\U0010FFFF]`
	}
	if negated && len(complement(items)) == 0 {
		r.err = errors.New("class matches no character")
		return ""
	}
	return renderClass(items, negated)
}

func (r *rxRenderer) repeat(n *rxNode) string {
	sub := n.subs[0]
	text := r.render(sub)
	if r.err != nil {
		return ""
	}
	if text == "" {
		return "" // repeating nothing matches nothing but the empty string
	}
	switch sub.kind {
	case rxChar, rxGroup, rxDot, rxClass: // one GBNF symbol already
	default: // a sequence or alternation made up by nonEmpty
		text = "(" + text + ")"
	}
	switch {
	case n.min == 0 && n.max == -1:
		return text + "*"
	case n.min == 1 && n.max == -1:
		return text + "+"
	case n.min == 0 && n.max == 1:
		return text + "?"
	}
	// Like llama.cpp, {m,n} of anything but one character goes through a
	// sub-rule, which keeps the expanded grammar small.
	if sub.kind != rxChar {
		id, ok := r.subRule[text]
		if !ok {
			id = r.b.addRule(r.name+"-"+strconv.Itoa(len(r.subRule)+1), text)
			r.subRule[text] = id
		}
		text = id
	}
	return repetition(text, n.min, n.max)
}

// repetition is llama.cpp's build_repetition without a separator: item
// repeated min..max times (max < 0: unbounded).
func repetition(item string, lo, hi int) string {
	switch {
	case hi == 0:
		return ""
	case lo == 0 && hi == 1:
		return item + "?"
	case lo == 1 && hi < 0:
		return item + "+"
	case lo == 0 && hi < 0:
		return item + "*"
	case hi < 0:
		return fmt.Sprintf("%s{%d,}", item, lo)
	}
	return fmt.Sprintf("%s{%d,%d}", item, lo, hi)
}

// separatedRepetition is llama.cpp's build_repetition with a separator:
// item (sep item)*, min..max items in all.
func separatedRepetition(item string, lo, hi int, sep string) string {
	if hi == 0 {
		return ""
	}
	if lo == 0 && hi == 1 {
		return item + "?"
	}
	restLo, restHi := 0, -1
	if lo > 0 {
		restLo = lo - 1
	}
	if hi > 0 {
		restHi = hi - 1
	}
	out := item + " " + repetition("("+sep+" "+item+")", restLo, restHi)
	if lo == 0 {
		out = "(" + out + ")?"
	}
	return out
}
