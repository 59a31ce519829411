package grammar

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

type regexCase struct {
	pattern        string
	valid, invalid []string
}

var regexCases = []regexCase{
	{`abc`, []string{"abc"}, []string{"", "ab", "abcd", "xabc"}},
	{`^abc$`, []string{"abc"}, []string{"abcabc"}},
	{`a.c`, []string{"abc", "a c", "a\"c", "aéc"}, []string{"ac", "a\nc", "a\rc", "a\u2028c"}},
	{`[a-c]+`, []string{"a", "cab"}, []string{"", "d", "ab-"}},
	{`[^0-9]`, []string{"a", "-", "\n"}, []string{"5", "ab"}},
	{`[-a]|[a-]|[\]\\^]|[\^]`, []string{"-", "a", "]", "\\", "^"}, []string{"b", "["}},
	{`\d{3}-\d{4}`, []string{"555-1234"}, []string{"55-1234", "555-12345", "abc-defg"}},
	{`\w+@\w+\.com`, []string{"a_1@b2.com"}, []string{"a@b.org", "a@.com", "a-b@c.com"}},
	{`a\sb\Sc`, []string{"a b-c", "a\tbxc", "a\u00a0b.c"}, []string{"ab-c", "a b c"}},
	{`\D\W`, []string{"a-", "x "}, []string{"1-", "ab"}},
	{`[\d\s]+`, []string{"1 2", "\t9"}, []string{"a"}},
	{`[^\D]`, []string{"7"}, []string{"a"}},
	{`colou?r`, []string{"color", "colour"}, []string{"colouur", "colr"}},
	{`a*b+c?`, []string{"b", "aabbc", "abbb"}, []string{"", "ac", "abcc"}},
	{`a{2}b{1,2}c{2,}`, []string{"aabcc", "aabbccc"}, []string{"abcc", "aabbbcc", "aabc"}},
	{`(ab){2,3}`, []string{"abab", "ababab"}, []string{"ab", "abababab", "aba"}},
	{`(a|bc)+d`, []string{"ad", "bcd", "abcad"}, []string{"d", "bd"}},
	{`(?:x|y)(?<name>z)`, []string{"xz", "yz"}, []string{"z", "xyz"}},
	{`cat|dog|`, []string{"cat", "dog", ""}, []string{"cow"}},
	{`\.\*\+\?\(\)\[\]\{\}\|\/\\`, []string{`.*+?()[]{}|/\`}, []string{""}},
	{`a{b`, []string{"a{b"}, []string{"ab"}},
	{`x{1,a}`, []string{"x{1,a}"}, []string{"x"}},
	{`]}`, []string{"]}"}, nil},
	{`\x41\u00e9\u{1F600}\t`, []string{"Aé😀\t"}, []string{"A"}},
	{`\uD83D\uDE00`, []string{"😀"}, []string{"\uFFFD\uFFFD"}},
	{`a+?b*?c??d{1,2}?`, []string{"ad", "aabcdd"}, []string{"bd"}},
	{`"q"`, []string{`"q"`}, []string{`q`}},
	{`\cJ\0`, []string{"\n\x00"}, nil},
	// Repetition of what may be empty: rewritten, since GBNF would be
	// left-recursive.
	{`(a*)*`, []string{"", "a", "aaa"}, []string{"b"}},
	{`(a|)+b`, []string{"b", "ab", "aab"}, []string{"a"}},
	{`(a?b?)*c`, []string{"c", "abc", "bac", "bbac"}, []string{"", "cc"}},
	{`(a*b*|c{0,2})+`, []string{"", "ab", "ccab", "cccc"}, []string{"d"}},
	{`()*x`, []string{"x"}, []string{"xx"}},
	{`(?:)+`, []string{""}, []string{"a"}},
}

func TestFromRegex(t *testing.T) {
	for _, c := range regexCases {
		got, err := FromRegex(c.pattern)
		if err != nil {
			t.Errorf("FromRegex(%q): %v", c.pattern, err)
			continue
		}
		g, err := parseGBNF(got)
		if err != nil {
			t.Errorf("FromRegex(%q) does not load: %v\n%s", c.pattern, err, got)
			continue
		}
		checkSamples(t, g, got, c.valid, c.invalid)
	}
}

func TestFromRegexErrors(t *testing.T) {
	for _, p := range []string{
		`(?=a)`, `(?!a)`, `(?<=a)b`, `(?<!a)b`, `(?i)a`, `(a)\1`, `\k<x>`, `a\bc`, `\B`, `\p{L}`,
		`a^b`, `a$b`, `(^a)`, `(a`, `a)`, `[a`, `[z-a]`, `*a`, `a**`, `a{2}{3}`, `{2}`,
		`a{3,2}`, `a{2001}`, `a{0,5000}`, `[]`, `[^\s\S]`, `\`, `\x4`, `\u12`, `\u{110000}`,
		"\xff", `\012`, `\cx1`[:2], strings.Repeat("(", 100) + strings.Repeat(")", 100),
	} {
		if got, err := FromRegex(p); err == nil {
			t.Errorf("FromRegex(%q) succeeded:\n%s", p, got)
		}
	}
}

// TestRegexAgainstGo compares our grammars with Go's regexp (whose syntax
// agrees with ECMAScript for these patterns) on every short string over a
// small alphabet.
func TestRegexAgainstGo(t *testing.T) {
	patterns := []string{
		`a|b`, `ab*`, `(ab)*`, `a?b?a?`, `[ab]{1,3}`, `(a|bb)+`, `a{2,}b`, `(a|b)*b(a|b)`,
		`[^a]*`, `(a*|b)*`, `(?:ab|a)(?:ba|b)`, `a(b|)a`, `\w\W?`, `[a-c-]+`, `(a{0,2}b?){2}`,
	}
	alphabet := []string{"a", "b", "c", "-", " "}
	var inputs []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		inputs = append(inputs, prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(prefix+c, n-1)
		}
	}
	gen("", 4)
	for _, p := range patterns {
		got, err := FromRegex(p)
		if err != nil {
			t.Errorf("FromRegex(%q): %v", p, err)
			continue
		}
		g := compile(t, got)
		re := regexp.MustCompile(`^(?:` + p + `)$`)
		for _, s := range inputs {
			if want := re.MatchString(s); g.accepts("root", s) != want {
				t.Errorf("%q on %q: grammar says %v, regexp %v\n%s", p, s, !want, want, got)
			}
		}
	}
}

// TestPatternInJSON compares pattern-constrained JSON strings with Go's
// regexp on the decoded value: whatever the grammar accepts must be a valid
// JSON string whose value matches.
func TestPatternInJSON(t *testing.T) {
	patterns := []string{`^.{1,2}$`, `^[^a]$`, `^["\\]+$`, `^[ -~]$`, `^a|"|\\$`, `^\s?\S$`}
	chars := []string{"a", `"`, `\`, " ", "\t", "\n", "é", "~"}
	var values []string
	for _, x := range chars {
		values = append(values, x)
		for _, y := range chars {
			values = append(values, x+y)
		}
	}
	for _, p := range patterns {
		schema, _ := json.Marshal(map[string]string{"type": "string", "pattern": p})
		got, err := FromJSONSchema(schema)
		if err != nil {
			t.Errorf("pattern %q: %v", p, err)
			continue
		}
		g := compile(t, got)
		re := regexp.MustCompile(`^(?:` + strings.TrimSuffix(strings.TrimPrefix(p, "^"), "$") + `)$`)
		for _, v := range values {
			enc, _ := json.Marshal(v) // the canonical spelling a model would write
			text := strings.ReplaceAll(string(enc), `\u0009`, `\t`)
			if want := re.MatchString(v); g.accepts("root", text) != want {
				t.Errorf("pattern %q on %s: grammar says %v, regexp %v\n%s", p, text, !want, want, got)
			}
			// Whatever else is accepted (here: the raw spelling) must be
			// valid JSON whose value matches.
			raw := `"` + v + `"`
			if g.accepts("root", raw) {
				var dec string
				if err := json.Unmarshal([]byte(raw), &dec); err != nil || !re.MatchString(dec) {
					t.Errorf("pattern %q accepts %q (%v)\n%s", p, raw, err, got)
				}
			}
		}
	}
}

func TestFromChoices(t *testing.T) {
	choices := []string{"yes", `say "hi"`, `back\slash`, "two\nlines", "tab\there", "é", "yes"}
	got, err := FromChoices(choices)
	if err != nil {
		t.Fatal(err)
	}
	checkSamples(t, compile(t, got), got, choices,
		[]string{"", "no", "Yes", `say \"hi\"`, `back\\slash`, "two\\nlines", "yesyes", "yes "})
	if strings.Count(got, `"yes"`) != 1 {
		t.Errorf("duplicate choice kept:\n%s", got)
	}
	for _, bad := range [][]string{nil, {}, {"a", ""}} {
		if _, err := FromChoices(bad); err == nil {
			t.Errorf("FromChoices(%q) succeeded", bad)
		}
	}
}
