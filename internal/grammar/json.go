package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// jvalue is a parsed JSON value that keeps the order of object keys:
// the order of "properties" decides the order of keys in the grammar, and
// encoding/json's maps would lose it.
type jvalue struct {
	kind jkind
	b    bool
	s    string         // string value, or the number's text
	arr  []*jvalue      // array elements
	keys []string       // object keys, in document order
	vals []*jvalue      // object values, parallel to keys
	idx  map[string]int // key -> position, for large objects (so lookups stay cheap)
}

// indexFrom is the object size from which lookups go through idx.
const indexFrom = 16

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "boolean"
	case jNumber:
		return "number"
	case jString:
		return "string"
	case jArray:
		return "array"
	default:
		return "object"
	}
}

// get returns the value of key in an object, or nil.
func (v *jvalue) get(key string) *jvalue {
	if v == nil || v.kind != jObject {
		return nil
	}
	if v.idx != nil {
		if i, ok := v.idx[key]; ok {
			return v.vals[i]
		}
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

func (v *jvalue) has(key string) bool { return v.get(key) != nil }

// set replaces key's value, or appends key.
func (v *jvalue) set(key string, val *jvalue) {
	if v.idx != nil {
		if i, ok := v.idx[key]; ok {
			v.vals[i] = val
			return
		}
	} else {
		for i, k := range v.keys {
			if k == key {
				v.vals[i] = val
				return
			}
		}
	}
	v.keys = append(v.keys, key)
	v.vals = append(v.vals, val)
	if v.idx != nil {
		v.idx[key] = len(v.keys) - 1
	} else if len(v.keys) >= indexFrom {
		v.idx = make(map[string]int, len(v.keys))
		for i, k := range v.keys {
			v.idx[k] = i
		}
	}
}

// without returns a shallow copy of object v lacking key.
func (v *jvalue) without(key string) *jvalue {
	out := &jvalue{kind: jObject}
	for i, k := range v.keys {
		if k != key {
			out.keys = append(out.keys, k)
			out.vals = append(out.vals, v.vals[i])
		}
	}
	return out
}

// clone returns a shallow copy of object v.
func (v *jvalue) clone() *jvalue {
	return &jvalue{kind: jObject, keys: append([]string(nil), v.keys...), vals: append([]*jvalue(nil), v.vals...)}
}

// parseJSON parses exactly one JSON value. Duplicate object keys keep the
// first key's position and the last value, as nlohmann::ordered_json does.
func parseJSON(data []byte) (*jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errors.New("unexpected end of JSON input")
	}
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// maxJSONDepth bounds the nesting parseValue recurses into; deeper input is
// refused rather than risking the goroutine's stack.
const maxJSONDepth = 1000

func parseValue(dec *json.Decoder, depth int) (*jvalue, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("unexpected end of JSON input")
		}
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &jvalue{kind: jNull}, nil
	case bool:
		return &jvalue{kind: jBool, b: t}, nil
	case json.Number:
		return &jvalue{kind: jNumber, s: t.String()}, nil
	case string:
		return &jvalue{kind: jString, s: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := &jvalue{kind: jArray}
			for dec.More() {
				e, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		case '{':
			v := &jvalue{kind: jObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				e, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.set(k, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// dump serializes v compactly, the way nlohmann's dump() does for the values
// found in schemas: the text a model must produce for a const or enum value.
// Numbers keep their source text (already valid JSON).
func (v *jvalue) dump() string {
	var sb strings.Builder
	v.dumpTo(&sb)
	return sb.String()
}

func (v *jvalue) dumpTo(sb *strings.Builder) {
	switch v.kind {
	case jNull:
		sb.WriteString("null")
	case jBool:
		if v.b {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	case jNumber:
		sb.WriteString(v.s)
	case jString:
		sb.WriteString(jsonQuote(v.s))
	case jArray:
		sb.WriteByte('[')
		for i, e := range v.arr {
			if i > 0 {
				sb.WriteByte(',')
			}
			e.dumpTo(sb)
		}
		sb.WriteByte(']')
	case jObject:
		sb.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(jsonQuote(k))
			sb.WriteByte(':')
			v.vals[i].dumpTo(sb)
		}
		sb.WriteByte('}')
	}
}

// jsonQuote returns s as a JSON string literal.
func jsonQuote(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		sb.WriteString(jsonEscapeRune(r))
	}
	sb.WriteByte('"')
	return sb.String()
}

// jsonEscapeRune returns how r is spelled inside a JSON string: escaped
// where JSON requires it (", \ and control characters), itself otherwise.
func jsonEscapeRune(r rune) string {
	switch r {
	case '"':
		return `\"`
	case '\\':
		return `\\`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x20 {
		return fmt.Sprintf(`\u%04x`, r)
	}
	return string(r)
}
