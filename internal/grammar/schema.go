package grammar

import (
	"fmt"
	"math"
	"math/big"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// spaceRule is the whitespace allowed after every JSON token: bounded, so
// that a model cannot stall by emitting whitespace forever.
const spaceRule = `| " " | "\n"{1,2} [ \t]{0,20}`

// primitive is a fixed helper rule and the rules its body refers to by name.
type primitive struct {
	body string
	deps []string
}

// primitives are llama.cpp's helper rules, spelled identically so that our
// grammars and llama.cpp's agree. Numbers have at most 16 integral and 16
// decimal digits.
var primitives = map[string]primitive{
	"boolean":       {`("true" | "false") space`, nil},
	"decimal-part":  {`[0-9]{1,16}`, nil},
	"integral-part": {`[0] | [1-9] [0-9]{0,15}`, nil},
	"number":        {`("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)? space`, []string{"integral-part", "decimal-part"}},
	"integer":       {`("-"? integral-part) space`, []string{"integral-part"}},
	"value":         {`object | array | string | number | boolean | null`, []string{"object", "array", "string", "number", "boolean", "null"}},
	"object":        {`"{" space ( string ":" space value ("," space string ":" space value)* )? "}" space`, []string{"string", "value"}},
	"array":         {`"[" space ( value ("," space value)* )? "]" space`, []string{"value"}},
	"uuid":          {`"\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\"" space`, nil},
	"char":          {`[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})`, nil},
	"string":        {`"\"" char* "\"" space`, []string{"char"}},
	"null":          {`"null" space`, nil},
}

// formatRules are llama.cpp's rules for string formats.
var formatRules = map[string]primitive{
	// Unlike llama.cpp's, the date rule knows month lengths and leap
	// years, so every date it allows parses (no 2023-06-31, no
	// 2023-02-29): 29 February only in years divisible by 4, centuries
	// only when divisible by 400.
	"date": {`[0-9]{4} "-" ( ("0" [13578] | "1" [02]) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] ) | ("0" [469] | "11") "-" ( "0" [1-9] | [1-2] [0-9] | "30" ) | "02-" ( "0" [1-9] | "1" [0-9] | "2" [0-8] ) ) | ` +
		`( [0-9]{2} ( [02468] [48] | [13579] [26] | [2468] "0" ) | ( [02468] [048] | [13579] [26] ) "00" ) "-02-29"`, nil},
	"time":             {`([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )`, nil},
	"date-time":        {`date "T" time`, []string{"date", "time"}},
	"date-string":      {`"\"" date "\"" space`, []string{"date"}},
	"time-string":      {`"\"" time "\"" space`, []string{"time"}},
	"date-time-string": {`"\"" date-time "\"" space`, []string{"date-time"}},
}

// reservedNames may not name a schema's own rules: a property called
// "string" gets the rule "string-", leaving "string" to the helper.
var reservedNames = func() map[string]bool {
	m := map[string]bool{"root": true}
	for k := range primitives {
		m[k] = true
	}
	for k := range formatRules {
		m[k] = true
	}
	return m
}()

var knownTypes = map[string]bool{
	"string": true, "number": true, "integer": true, "boolean": true,
	"null": true, "object": true, "array": true,
}

var uuidFormat = regexp.MustCompile(`^uuid[1-5]?$`)

// addPrimitive adds a helper rule under name and its dependencies under
// their own names. The dependencies are referenced by those names, so a
// clash with a different rule of the same name is an error.
func (b *Builder) addPrimitive(name string, p primitive) (string, error) {
	n := b.addRule(name, p.body)
	for _, dep := range p.deps {
		dp, ok := primitives[dep]
		if !ok {
			dp = formatRules[dep]
		}
		if old, ok := b.rules[dep]; ok {
			if old != dp.body {
				return "", &SchemaError{Reason: fmt.Sprintf("rule %q is already defined with another body", dep)}
			}
			continue
		}
		if _, err := b.addPrimitive(dep, dp); err != nil {
			return "", err
		}
	}
	return n, nil
}

// converter turns one schema document into rules of a Builder.
type converter struct {
	b         *Builder
	doc       *jvalue
	refPrefix string               // "ref" for the root document, "<name>-ref" otherwise
	refs      map[string]*refState // by $ref string
	depth     int                  // sub-schemas being visited
	work      int                  // sub-schemas visited in all; bounded, as type lists and allOf can multiply it
	nest      int                  // enclosing objects/arrays whose opening bracket precedes the current position
}

// refState tracks one $ref of the document: recursive references resolve
// to the rule name reserved for it.
type refState struct {
	name      string
	resolving bool
	nestAt    int // c.nest when resolution began
	recursed  bool
	result    string
}

func errAt(path, format string, args ...any) error {
	return &SchemaError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// join builds child rule names as llama.cpp does: "a" + "b" -> "a-b", "" + "b" -> "b".
func join(name, suffix string) string {
	if name == "" {
		return suffix
	}
	return name + "-" + suffix
}

// ptrEscape escapes a JSON pointer token.
func ptrEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// visit adds rules for schema s and returns the name of its rule (or, for
// helpers, of the shared helper). name is the prefix for the schema's rules
// ("" at the top: the rule becomes "root"); path locates s for errors.
func (c *converter) visit(s *jvalue, name, path string) (string, error) {
	c.depth++
	defer func() { c.depth-- }()
	c.work++
	if c.work > maxSchemaWork {
		return "", errAt(path, "schema too complex")
	}
	if c.depth > maxSchemaDepth {
		return "", errAt(path, "schema nested too deeply (more than %d levels)", maxSchemaDepth)
	}
	if c.b.tooBig() {
		return "", errAt(path, "grammar too large")
	}
	ruleName := name
	if reservedNames[name] {
		ruleName = name + "-"
	} else if name == "" {
		ruleName = "root"
	}

	switch s.kind {
	case jBool:
		if !s.b {
			return "", errAt(path, "schema false matches nothing")
		}
		return c.anyValue(ruleName)
	case jObject:
	default:
		return "", errAt(path, "schema must be an object or a boolean, not %s", s.kind)
	}

	typ := s.get("type")
	typeName := ""
	if typ != nil {
		switch typ.kind {
		case jString:
			if !knownTypes[typ.s] {
				return "", errAt(path+"/type", "unknown type %q", typ.s)
			}
			typeName = typ.s
		case jArray:
			if len(typ.arr) == 0 {
				return "", errAt(path+"/type", "empty list of types")
			}
			for i, t := range typ.arr {
				if t.kind != jString || !knownTypes[t.s] {
					return "", errAt(fmt.Sprintf("%s/type/%d", path, i), "unknown type %s", t.dump())
				}
			}
		default:
			return "", errAt(path+"/type", "type must be a string or an array of strings, not %s", typ.kind)
		}
	}
	untyped := typ == nil
	is := func(t string) bool { return untyped || typeName == t }
	if typ == nil || typ.kind == jString {
		if err := unenforced(s, typeName, path); err != nil {
			return "", err
		}
	}

	if ref := s.get("$ref"); ref != nil {
		if ref.kind != jString {
			return "", errAt(path+"/$ref", "$ref must be a string")
		}
		target, err := c.resolveRef(ref.s, path+"/$ref")
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, target), nil
	}

	if all := s.get("allOf"); all != nil {
		return c.visitAllOf(s, all, name, path)
	}

	for _, key := range []string{"oneOf", "anyOf"} {
		alts := s.get(key)
		if alts == nil {
			continue
		}
		if alts.kind != jArray || len(alts.arr) == 0 {
			return "", errAt(path+"/"+key, "%s must be a non-empty array", key)
		}
		body, err := c.union(name, alts.arr, path+"/"+key)
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, body), nil
	}

	if typ != nil && typ.kind == jArray {
		alts := make([]*jvalue, len(typ.arr))
		for i, t := range typ.arr {
			alts[i] = s.clone()
			alts[i].set("type", t)
		}
		body, err := c.union(name, alts, path)
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, body), nil
	}

	if v := s.get("const"); v != nil {
		return c.b.addRule(ruleName, Literal(v.dump())+" space"), nil
	}

	if e := s.get("enum"); e != nil {
		if e.kind != jArray || len(e.arr) == 0 {
			return "", errAt(path+"/enum", "enum must be a non-empty array")
		}
		lits := make([]string, len(e.arr))
		for i, v := range e.arr {
			lits[i] = Literal(v.dump())
		}
		return c.b.addRule(ruleName, "("+strings.Join(lits, " | ")+") space"), nil
	}

	addl := s.get("additionalProperties")
	if is("object") && (s.has("properties") || addl != nil && !(addl.kind == jBool && addl.b)) {
		props, err := objectProps(s, path)
		if err != nil {
			return "", err
		}
		required := map[string]bool{}
		if r := s.get("required"); r != nil && r.kind == jArray {
			for _, k := range r.arr {
				if k.kind == jString {
					required[k.s] = true
				}
			}
		}
		body, err := c.buildObject(props, required, name, addl, path)
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, body), nil
	}

	if is("array") && (s.has("items") || s.has("prefixItems")) ||
		typeName == "array" && (s.has("minItems") || s.has("maxItems")) {
		body, err := c.visitArray(s, name, path)
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, body), nil
	}

	format := ""
	if f := s.get("format"); f != nil {
		if f.kind != jString {
			return "", errAt(path+"/format", "format must be a string")
		}
		format = f.s
	}

	if is("string") && s.has("pattern") {
		p := s.get("pattern")
		if p.kind != jString {
			return "", errAt(path+"/pattern", "pattern must be a string")
		}
		body, err := c.b.regexBody(p.s, ruleName, true)
		if err != nil {
			return "", errAt(path+"/pattern", "%v", err)
		}
		return c.b.addRule(ruleName, `"\"" (`+body+`) "\"" space`), nil
	}

	if is("string") && uuidFormat.MatchString(format) {
		n := format
		if ruleName == "root" {
			n = "root"
		}
		return c.b.addPrimitive(n, primitives["uuid"])
	}

	if is("string") && formatRules[format+"-string"].body != "" {
		helper, err := c.b.addPrimitive(format+"-string", formatRules[format+"-string"])
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, helper), nil
	}

	if typeName == "string" && (s.has("minLength") || s.has("maxLength")) {
		lo, _, err := count(s, "minLength", path)
		if err != nil {
			return "", err
		}
		hi, hasHi, err := count(s, "maxLength", path)
		if err != nil {
			return "", err
		}
		if !hasHi {
			hi = -1
		} else if hi < lo {
			return "", errAt(path, "minLength %d exceeds maxLength %d", lo, hi)
		}
		char, err := c.b.addPrimitive("char", primitives["char"])
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, `"\"" `+repetition(char, lo, hi)+` "\"" space`), nil
	}

	if typeName == "integer" && (s.has("minimum") || s.has("exclusiveMinimum") || s.has("maximum") || s.has("exclusiveMaximum")) {
		lo, hi, err := intBounds(s, path)
		if err != nil {
			return "", err
		}
		if lo != noMin || hi != noMax {
			return c.b.addRule(ruleName, intRangeBody(lo, hi)), nil
		}
	}

	if typeName == "object" {
		obj, err := c.b.addPrimitive("object", primitives["object"])
		if err != nil {
			return "", err
		}
		return c.b.addRule(ruleName, obj), nil
	}
	if untyped {
		// {} and schemas with only annotations accept any value.
		return c.anyValue(ruleName)
	}
	n := typeName
	if ruleName == "root" {
		n = "root"
	}
	return c.b.addPrimitive(n, primitives[typeName])
}

func (c *converter) anyValue(ruleName string) (string, error) {
	v, err := c.b.addPrimitive("value", primitives["value"])
	if err != nil {
		return "", err
	}
	return c.b.addRule(ruleName, v), nil
}

// union visits alternatives, named name-0, name-1, ... ("alternative-0", ...
// at the top).
func (c *converter) union(name string, alts []*jvalue, path string) (string, error) {
	rules := make([]string, len(alts))
	for i, alt := range alts {
		sub := name + "-" + strconv.Itoa(i)
		if name == "" {
			sub = "alternative-" + strconv.Itoa(i)
		}
		r, err := c.visit(alt, sub, path+"/"+strconv.Itoa(i))
		if err != nil {
			return "", err
		}
		rules[i] = r
	}
	return strings.Join(rules, " | "), nil
}

type objProp struct {
	name   string
	schema *jvalue
}

func objectProps(s *jvalue, path string) ([]objProp, error) {
	p := s.get("properties")
	if p == nil {
		return nil, nil
	}
	if p.kind != jObject {
		return nil, errAt(path+"/properties", "properties must be an object")
	}
	props := make([]objProp, len(p.keys))
	for i, k := range p.keys {
		props[i] = objProp{k, p.vals[i]}
	}
	return props, nil
}

// buildObject is llama.cpp's _build_object_rule: required properties in
// declared order, then any subset of the optional ones in declared order,
// then (if allowed) additional properties whose keys are none of the
// declared ones.
func (c *converter) buildObject(props []objProp, required map[string]bool, name string, additional *jvalue, path string) (string, error) {
	type optional struct {
		kv, key string
		star    bool // additional properties: any number of them
	}
	var reqKV []string
	var opts []optional
	var names []string
	for _, p := range props {
		names = append(names, p.name)
		if p.schema.kind == jBool && !p.schema.b {
			continue // the property must not appear
		}
		child := join(name, p.name)
		if child == "" {
			// An empty property name at the top must not take "root".
			child = "-"
		}
		c.nest++
		value, err := c.visit(p.schema, child, path+"/properties/"+ptrEscape(p.name))
		c.nest--
		if err != nil {
			return "", err
		}
		kv := c.b.addRule(join(name, p.name)+"-kv", Literal(jsonQuote(p.name))+` space ":" space `+value)
		if required[p.name] {
			reqKV = append(reqKV, kv)
		} else {
			opts = append(opts, optional{kv: kv, key: p.name})
		}
	}
	if additional != nil && (additional.kind == jBool && additional.b || additional.kind == jObject) {
		sub := join(name, "additional")
		var value string
		var err error
		if additional.kind == jObject {
			c.nest++
			value, err = c.visit(additional, sub+"-value", path+"/additionalProperties")
			c.nest--
		} else {
			value, err = c.b.addPrimitive("value", primitives["value"])
		}
		if err != nil {
			return "", err
		}
		var key string
		if len(names) == 0 {
			key, err = c.b.addPrimitive("string", primitives["string"])
		} else {
			var body string
			body, err = c.notStrings(names)
			key = c.b.addRule(sub+"-k", body)
		}
		if err != nil {
			return "", err
		}
		opts = append(opts, optional{kv: c.b.addRule(sub+"-kv", key+` ":" space `+value), star: true})
	} else if additional != nil && additional.kind != jBool && additional.kind != jNull {
		return "", errAt(path+"/additionalProperties", "additionalProperties must be a boolean or a schema")
	}

	var sb strings.Builder
	sb.WriteString(`"{" space `)
	sb.WriteString(strings.Join(reqKV, ` "," space `))
	if len(opts) > 0 {
		// seq(i, first) matches optional properties i.. in order, any subset
		// of them; the first one present at i itself unless first is false
		// (then every one, i included, is preceded by a comma). tail[i] is
		// the rule for seq(i+1, false); built from the end, which is also
		// the order llama.cpp creates them in.
		tail := make([]string, len(opts))
		seq := func(i int, first bool) string {
			o := opts[i]
			comma := `( "," space ` + o.kv + ` )`
			var res string
			switch {
			case !first && o.star:
				res = comma + "*"
			case !first:
				res = comma + "?"
			case o.star:
				res = o.kv + " " + comma + "*"
			default:
				res = o.kv
			}
			if i+1 < len(opts) {
				res += " " + tail[i]
			}
			return res
		}
		for i := len(opts) - 2; i >= 0; i-- {
			tail[i] = c.b.addRule(join(name, opts[i].key)+"-rest", seq(i+1, false))
		}
		sb.WriteString(" (")
		if len(reqKV) > 0 {
			sb.WriteString(` "," space ( `)
		}
		for i := range opts {
			if i > 0 {
				sb.WriteString(" | ")
			}
			sb.WriteString(seq(i, true))
		}
		if len(reqKV) > 0 {
			sb.WriteString(" )")
		}
		sb.WriteString(" )?")
	}
	sb.WriteString(` "}" space`)
	return sb.String(), nil
}

// notStrings returns a rule body matching a JSON string (key) that is none
// of names, as llama.cpp's _not_strings does, with one change: where a key
// departs from every name, its next character is an ordinary JSON string
// character (never a raw backslash or control character, which would make
// the output invalid JSON).
func (c *converter) notStrings(names []string) (string, error) {
	type node struct {
		children map[string]*node
		end      bool
	}
	root := &node{children: map[string]*node{}}
	for _, name := range names {
		n := root
		for _, r := range name {
			u := jsonEscapeRune(r) // the name as spelled in JSON
			next := n.children[u]
			if next == nil {
				next = &node{children: map[string]*node{}}
				n.children[u] = next
			}
			n = next
		}
		n.end = true
	}
	char, err := c.b.addPrimitive("char", primitives["char"])
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	var visit func(n *node)
	visit = func(n *node) {
		keys := make([]string, 0, len(n.children))
		for k := range n.children {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		excluded := []rrange{{'"', '"'}, {'\\', '\\'}, {0x7f, 0x7f}, {0, 0x1f}}
		for i, k := range keys {
			if i > 0 {
				sb.WriteString(" | ")
			}
			if r, size := utf8.DecodeRuneInString(k); size == len(k) {
				sb.WriteString(renderClass([]rrange{{r, r}}, false))
				excluded = append(excluded, rrange{r, r})
			} else {
				sb.WriteString(Literal(k)) // an escape sequence such as \"
			}
			child := n.children[k]
			if len(child.children) > 0 {
				sb.WriteString(" (")
				visit(child)
				sb.WriteString(")")
			} else if child.end {
				sb.WriteString(" " + char + "+")
			}
		}
		if len(keys) > 0 {
			sb.WriteString(" | " + renderClass(excluded, true) + " " + char + "*")
		} else if n.end {
			sb.WriteString(char + "+") // only "" is taken: any non-empty key
		}
	}
	sb.WriteString(`["] ( `)
	visit(root)
	sb.WriteString(" )")
	if !root.end {
		sb.WriteString("?")
	}
	sb.WriteString(` ["] space`)
	return sb.String(), nil
}

// visitArray handles items and prefixItems: a tuple when either is an array
// (prefixItems followed by items, if that is a schema), else items repeated
// minItems..maxItems times.
func (c *converter) visitArray(s *jvalue, name, path string) (string, error) {
	items, prefix := s.get("items"), s.get("prefixItems")
	lo, _, err := count(s, "minItems", path)
	if err != nil {
		return "", err
	}
	hi, hasHi, err := count(s, "maxItems", path)
	if err != nil {
		return "", err
	}
	if !hasHi {
		hi = -1
	} else if hi < lo {
		return "", errAt(path, "minItems %d exceeds maxItems %d", lo, hi)
	}

	var tuple []*jvalue
	isTuple, tuplePath := false, path+"/items"
	var rest *jvalue // schema of items after the tuple, if any
	switch {
	case items != nil && items.kind == jArray:
		isTuple, tuple = true, items.arr
	case prefix != nil && prefix.kind == jArray:
		isTuple, tuple, tuplePath = true, prefix.arr, path+"/prefixItems"
		if items != nil && !(items.kind == jBool && !items.b) {
			rest = items
		}
	}
	if isTuple && (len(tuple) > 0 || rest == nil) {
		var sb strings.Builder
		sb.WriteString(`"[" space `)
		for i, it := range tuple {
			if i > 0 {
				sb.WriteString(` "," space `)
			}
			c.nest++
			r, err := c.visit(it, join(name, "tuple-"+strconv.Itoa(i)), tuplePath+"/"+strconv.Itoa(i))
			c.nest--
			if err != nil {
				return "", err
			}
			sb.WriteString(r)
		}
		if rest != nil {
			if hasHi && hi < len(tuple) {
				return "", errAt(path, "maxItems %d is less than the %d prefixItems", hi, len(tuple))
			}
			c.nest++
			r, err := c.visit(rest, join(name, "item"), path+"/items")
			c.nest--
			if err != nil {
				return "", err
			}
			restLo, restHi := max(lo-len(tuple), 0), -1
			if hasHi {
				restHi = hi - len(tuple)
			}
			if more := repetition(`("," space `+r+`)`, restLo, restHi); more != "" {
				sb.WriteString(" " + more)
			}
		}
		sb.WriteString(` "]" space`)
		return sb.String(), nil
	}

	item, itemPath := rest, path+"/items"
	if item == nil {
		switch {
		case items != nil:
			item = items
		case prefix != nil:
			item, itemPath = prefix, path+"/prefixItems"
		default: // only minItems/maxItems: any items
			item = &jvalue{kind: jBool, b: true}
		}
	}
	if item.kind == jBool && !item.b {
		return `"[" space "]" space`, nil
	}
	c.nest++
	r, err := c.visit(item, join(name, "item"), itemPath)
	c.nest--
	if err != nil {
		return "", err
	}
	return `"[" space ` + separatedRepetition(r, lo, hi, `"," space`) + ` "]" space`, nil
}

// resolveRef returns the rule name for a local $ref, visiting its target the
// first time. A reference back into a target still being visited is fine
// (recursive schemas) as long as an opening bracket has been matched since,
// else the grammar would be left-recursive, which llama.cpp rejects.
func (c *converter) resolveRef(ref, path string) (string, error) {
	if ref != "#" && !strings.HasPrefix(ref, "#/") {
		return "", errAt(path, "unsupported $ref %q: only references within the document (\"#\", \"#/...\") are supported", ref)
	}
	if st := c.refs[ref]; st != nil {
		if st.resolving {
			if st.nestAt == c.nest {
				return "", errAt(path, "$ref %q refers back to itself without matching any input (left recursion)", ref)
			}
			st.recursed = true
			return st.name, nil
		}
		return st.result, nil
	}
	target, err := c.pointer(ref[1:])
	if err != nil {
		return "", errAt(path, "cannot resolve $ref %q: %v", ref, err)
	}
	name := sanitizeName(c.refPrefix + ref[1:])
	if _, taken := c.b.rules[name]; taken {
		for i := 0; ; i++ {
			if _, taken := c.b.rules[name+strconv.Itoa(i)]; !taken {
				name += strconv.Itoa(i)
				break
			}
		}
	}
	st := &refState{name: name, resolving: true, nestAt: c.nest}
	c.refs[ref] = st
	res, err := c.visit(target, name, ref[1:])
	st.resolving = false
	if err != nil {
		return "", err
	}
	if res != name && st.recursed {
		if got := c.b.addRule(name, res); got != name {
			return "", errAt(path, "cannot name the rule for $ref %q", ref)
		}
		res = name
	}
	st.result = res
	return res, nil
}

// pointer resolves a JSON pointer (URI-fragment encoded) within the document.
func (c *converter) pointer(ptr string) (*jvalue, error) {
	cur := c.doc
	if ptr == "" {
		return cur, nil
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		if t, err := url.PathUnescape(tok); err == nil {
			tok = t
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch cur.kind {
		case jObject:
			next := cur.get(tok)
			if next == nil {
				return nil, fmt.Errorf("no %q", tok)
			}
			cur = next
		case jArray:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur.arr) {
				return nil, fmt.Errorf("no element %q", tok)
			}
			cur = cur.arr[i]
		default:
			return nil, fmt.Errorf("%q is inside a %s", tok, cur.kind)
		}
	}
	return cur, nil
}

// visitAllOf merges the members of allOf into one schema and visits that.
// Like llama.cpp: properties of members are merged (all required unless the
// member lists its required ones; those of anyOf alternatives inside allOf
// optional) and enums are intersected. Beyond llama.cpp, other keywords are
// merged too (the first occurrence wins), so allOf of a type and a length
// bound, say, keeps both.
func (c *converter) visitAllOf(s, all *jvalue, name, path string) (string, error) {
	if all.kind != jArray || len(all.arr) == 0 {
		return "", errAt(path+"/allOf", "allOf must be a non-empty array")
	}
	merged := s.without("allOf")
	var props []objProp
	seen := map[string]bool{}
	var required []string
	isRequired := map[string]bool{}
	require := func(k string) {
		if !isRequired[k] {
			isRequired[k] = true
			required = append(required, k)
		}
	}
	if r := s.get("required"); r != nil && r.kind == jArray {
		for _, k := range r.arr {
			if k.kind == jString {
				require(k.s)
			}
		}
	}
	var enums [][]*jvalue
	addProps := func(comp *jvalue, req bool, cpath string) error {
		ps, err := objectProps(comp, cpath)
		if err != nil {
			return err
		}
		var reqList map[string]bool
		if r := comp.get("required"); r != nil && r.kind == jArray {
			reqList = map[string]bool{}
			for _, k := range r.arr {
				if k.kind == jString {
					reqList[k.s] = true
				}
			}
		}
		for _, p := range ps {
			if !seen[p.name] {
				seen[p.name] = true
				props = append(props, p)
			}
			if req && (reqList == nil || reqList[p.name]) {
				require(p.name)
			}
		}
		return nil
	}
	if err := addProps(s, false, path); err != nil {
		return "", err
	}
	addEnum := func(comp *jvalue, cpath string) error {
		if v := comp.get("const"); v != nil {
			enums = append(enums, []*jvalue{v})
		} else if e := comp.get("enum"); e != nil {
			if e.kind != jArray {
				return errAt(cpath+"/enum", "enum must be an array")
			}
			enums = append(enums, e.arr)
		}
		return nil
	}
	if err := addEnum(s, path); err != nil {
		return "", err
	}
	skip := map[string]bool{
		"properties": true, "required": true, "enum": true, "const": true, "$ref": true,
		"allOf": true, "anyOf": true, "oneOf": true, "$defs": true, "definitions": true,
		"title": true, "description": true, "$schema": true, "$id": true, "$comment": true,
		"examples": true, "default": true,
	}
	active := map[*jvalue]bool{}
	var add func(comp *jvalue, req bool, cpath string, depth int) error
	add = func(comp *jvalue, req bool, cpath string, depth int) error {
		c.work++
		if c.work > maxSchemaWork {
			return errAt(cpath, "schema too complex")
		}
		if depth > maxSchemaDepth {
			return errAt(cpath, "allOf nested too deeply")
		}
		if comp.kind == jBool {
			if !comp.b {
				return errAt(cpath, "allOf member false matches nothing")
			}
			return nil
		}
		if comp.kind != jObject {
			return errAt(cpath, "allOf member must be a schema")
		}
		if active[comp] {
			return errAt(cpath, "allOf refers back to itself")
		}
		active[comp] = true
		defer delete(active, comp)
		if ref := comp.get("$ref"); ref != nil {
			if ref.kind != jString || ref.s != "#" && !strings.HasPrefix(ref.s, "#/") {
				return errAt(cpath+"/$ref", "unsupported $ref %s", ref.dump())
			}
			target, err := c.pointer(ref.s[1:])
			if err != nil {
				return errAt(cpath+"/$ref", "cannot resolve $ref %q: %v", ref.s, err)
			}
			return add(target, req, ref.s[1:], depth+1)
		}
		if inner := comp.get("allOf"); inner != nil {
			if inner.kind != jArray {
				return errAt(cpath+"/allOf", "allOf must be an array")
			}
			for i, m := range inner.arr {
				if err := add(m, req, fmt.Sprintf("%s/allOf/%d", cpath, i), depth+1); err != nil {
					return err
				}
			}
		}
		for _, key := range []string{"anyOf", "oneOf"} {
			alts := comp.get(key)
			if alts == nil || alts.kind != jArray {
				continue
			}
			for i, alt := range alts.arr {
				// Properties of alternatives become optional, as in llama.cpp.
				if err := add(alt, false, fmt.Sprintf("%s/%s/%d", cpath, key, i), depth+1); err != nil {
					return err
				}
			}
		}
		if err := addProps(comp, req, cpath); err != nil {
			return err
		}
		if req {
			if err := addEnum(comp, cpath); err != nil {
				return err
			}
		}
		for i, k := range comp.keys {
			if !skip[k] && !merged.has(k) {
				merged.set(k, comp.vals[i])
			}
		}
		return nil
	}
	for i, m := range all.arr {
		if err := add(m, true, fmt.Sprintf("%s/allOf/%d", path, i), 0); err != nil {
			return "", err
		}
	}

	if len(props) > 0 {
		p := &jvalue{kind: jObject}
		for _, pr := range props {
			p.set(pr.name, pr.schema)
		}
		merged.set("properties", p)
	}
	if len(required) > 0 {
		r := &jvalue{kind: jArray}
		for _, k := range required {
			r.arr = append(r.arr, &jvalue{kind: jString, s: k})
		}
		merged.set("required", r)
	}
	if len(enums) > 0 {
		// Values in every enum, in the order llama.cpp emits them (sorted
		// by their GBNF literal).
		counts := map[string]int{}
		values := map[string]*jvalue{}
		for _, e := range enums {
			inThis := map[string]bool{}
			for _, v := range e {
				lit := Literal(v.dump())
				if !inThis[lit] {
					inThis[lit] = true
					counts[lit]++
					values[lit] = v
				}
			}
		}
		var common []string
		for lit, n := range counts {
			if n == len(enums) {
				common = append(common, lit)
			}
		}
		if len(common) == 0 {
			return "", errAt(path+"/allOf", "the enum and const values of allOf have nothing in common")
		}
		sort.Strings(common)
		e := &jvalue{kind: jArray}
		for _, lit := range common {
			e.arr = append(e.arr, values[lit])
		}
		merged = merged.without("const")
		merged.set("enum", e)
	}
	return c.visit(merged, name, path)
}

// count reads a non-negative integer keyword such as minItems; it must not
// exceed the largest repetition llama.cpp accepts.
func count(s *jvalue, key, path string) (int, bool, error) {
	v := s.get(key)
	if v == nil {
		return 0, false, nil
	}
	if v.kind != jNumber {
		return 0, false, errAt(path+"/"+key, "%s must be a number", key)
	}
	f, err := strconv.ParseFloat(v.s, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false, errAt(path+"/"+key, "invalid number %s", v.s)
	}
	if f < 0 || f != math.Trunc(f) {
		return 0, false, errAt(path+"/"+key, "%s must be a non-negative integer", key)
	}
	if f > maxRepetition {
		return 0, false, errAt(path+"/"+key, "%s %s exceeds the supported maximum of %d", key, v.s, maxRepetition)
	}
	return int(f), true, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// digitLimit is the magnitude beyond which an integer bound cannot matter:
// the unbounded integer rule has at most 16 digits.
var digitLimit = big.NewInt(1e16)

// intBounds reads minimum, exclusiveMinimum, maximum and exclusiveMaximum
// (numbers; or, draft-04 style, booleans qualifying minimum/maximum) into
// integer bounds lo..hi; noMin/noMax where a side is open.
func intBounds(s *jvalue, path string) (lo, hi int64, err error) {
	var loB, hiB *big.Int // nil: open
	tighten := func(b *big.Int, lower bool) {
		switch {
		case lower && (loB == nil || b.Cmp(loB) > 0):
			loB = b
		case !lower && (hiB == nil || b.Cmp(hiB) < 0):
			hiB = b
		}
	}
	for _, k := range []struct {
		key       string
		lower     bool
		exclusive bool
	}{{"minimum", true, false}, {"exclusiveMinimum", true, true}, {"maximum", false, false}, {"exclusiveMaximum", false, true}} {
		v := s.get(k.key)
		if v == nil {
			continue
		}
		src, exclusive := v, k.exclusive
		if v.kind == jBool {
			if !k.exclusive {
				return 0, 0, errAt(path+"/"+k.key, "%s must be a number", k.key)
			}
			if !v.b {
				continue
			}
			if k.lower {
				src = s.get("minimum")
			} else {
				src = s.get("maximum")
			}
			if src == nil {
				continue
			}
		}
		if src.kind != jNumber {
			return 0, 0, errAt(path+"/"+k.key, "%s must be a number", k.key)
		}
		b, ok := boundInt(src.s, k.lower, exclusive)
		if !ok {
			return 0, 0, errAt(path+"/"+k.key, "unsupported number %s", src.s)
		}
		tighten(b, k.lower)
	}
	neg := new(big.Int).Neg(digitLimit)
	lo, hi = noMin, noMax
	if loB != nil {
		switch {
		case loB.Cmp(digitLimit) >= 0:
			return 0, 0, errAt(path, "minimum is beyond the 16 digits an integer may have")
		case loB.Cmp(neg) > 0:
			lo = loB.Int64()
		}
	}
	if hiB != nil {
		switch {
		case hiB.Cmp(neg) <= 0:
			return 0, 0, errAt(path, "maximum is beyond the 16 digits an integer may have")
		case hiB.Cmp(digitLimit) < 0:
			hi = hiB.Int64()
		}
	}
	if lo != noMin && hi != noMax && lo > hi {
		return 0, 0, errAt(path, "no integer lies between the minimum and the maximum")
	}
	// With one side open, the digit-by-digit rules support 15 digits.
	if hi == noMax && lo >= 1e15 || lo == noMin && hi <= -1e15 {
		return 0, 0, errAt(path, "a one-sided integer bound must have at most 15 digits")
	}
	return lo, hi, nil
}

// boundInt converts a JSON number to the integer bound it implies: the
// least integer >= v (> v if exclusive) for a lower bound, the greatest <= v
// (< v) for an upper one. Huge exponents are handled without big
// arithmetic on them.
func boundInt(text string, lower, exclusive bool) (*big.Int, bool) {
	if len(text) > 100 {
		return nil, false
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !isRangeErr(err) {
		return nil, false
	}
	mant, exp, _ := strings.Cut(strings.ToLower(text), "e")
	e, _ := strconv.Atoi(exp)
	if e > 100 || e < -100 {
		nonzero := strings.Trim(mant, "-+0.") != ""
		switch {
		case !nonzero:
		case math.Abs(f) >= 1: // |v| > 1e100: far outside the 16-digit range
			return big.NewInt(int64(math.Copysign(1, f)) * 1e17), true
		default: // 0 < |v| < 1e-100
			neg := strings.HasPrefix(mant, "-")
			switch {
			case lower && neg, !lower && !neg:
				return big.NewInt(0), true
			case lower:
				return big.NewInt(1), true
			default:
				return big.NewInt(-1), true
			}
		}
		text = "0"
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return nil, false
	}
	// floor(r) (Euclidean division by the positive denominator)
	fl := new(big.Int).Div(r.Num(), r.Denom())
	isInt := r.IsInt()
	if lower {
		if exclusive || !isInt {
			return fl.Add(fl, big.NewInt(1)), true
		}
		return fl, true
	}
	if exclusive && isInt {
		return fl.Sub(fl, big.NewInt(1)), true
	}
	return fl, true
}

// Keywords that constrain values in ways a grammar cannot (or this
// converter does not) enforce. llama.cpp's converter ignores them, which
// lets output through that fails the schema; Lumen refuses the schema
// instead, so that "valid under the schema" is a promise.
var unenforceable = []string{
	"multipleOf", "not", "if", "then", "else", "patternProperties", "propertyNames",
	"minProperties", "maxProperties", "contains", "minContains", "maxContains",
	"dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems",
}

// unenforced refuses a schema (one type, or none) that asks for something
// the grammar would not enforce. A type's own keywords matter only where
// values of that type are allowed ({"type":"null","minimum":1} is fine:
// JSON Schema applies minimum to numbers only).
func unenforced(s *jvalue, typeName, path string) error {
	allows := func(t string) bool { return typeName == "" || typeName == t }
	for _, k := range unenforceable {
		if s.has(k) {
			return errAt(path+"/"+k, "%s is not supported: a grammar cannot enforce it", k)
		}
	}
	if u := s.get("uniqueItems"); u != nil && !(u.kind == jBool && !u.b) {
		return errAt(path+"/uniqueItems", "uniqueItems is not supported: a grammar cannot enforce it")
	}
	for _, k := range []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} {
		if s.has(k) && allows("number") {
			return errAt(path+"/"+k, "%s is only supported on integers (type \"integer\")", k)
		}
	}
	for _, k := range []string{"minLength", "maxLength"} {
		switch {
		case s.has(k) && typeName == "":
			return errAt(path+"/"+k, "%s needs type \"string\"", k)
		case s.has(k) && typeName == "string" && (s.has("pattern") || s.has("format")):
			return errAt(path+"/"+k, "%s cannot be combined with pattern or format; bound the length in the pattern", k)
		}
	}
	for _, k := range []string{"minItems", "maxItems"} {
		if s.has(k) && typeName == "" && !s.has("items") && !s.has("prefixItems") {
			return errAt(path+"/"+k, "%s needs type \"array\"", k)
		}
	}
	if f := s.get("format"); f != nil && f.kind == jString {
		supported := uuidFormat.MatchString(f.s) || formatRules[f.s+"-string"].body != ""
		switch {
		case !allows("string"):
			// Formats are about strings (and numericFormats annotate
			// numbers); other types ignore them.
		case supported && s.has("pattern"):
			return errAt(path+"/format", "format cannot be combined with pattern")
		case !supported:
			return errAt(path+"/format", "format %q is not supported (date, time, date-time and uuid are)", f.s)
		}
	}
	return nil
}
