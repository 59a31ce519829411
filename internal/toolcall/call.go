package toolcall

import (
	"bytes"
	"encoding/json"
	"strings"
)

// decodeCall reads one call object, {"name": "f", "arguments": {...}}.
// "parameters" is taken for "arguments" in every format (models mix them
// up), "id" (Mistral writes one) and "type": "function" are ignored, and
// any other key makes it no call: a JSON answer that merely has a "name"
// must not turn into a call. Without an arguments key the arguments are
// "{}", unless needArgs, for the bare-JSON format whose arguments key is
// all that sets a call apart from an answer.
func decodeCall(raw string, needArgs bool) (Call, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &m) != nil || m == nil {
		return Call{}, false
	}
	var c Call
	if json.Unmarshal(m["name"], &c.Name) != nil || c.Name == "" {
		return Call{}, false
	}
	var args json.RawMessage
	for k, v := range m {
		switch k {
		case "name":
		case "arguments", "parameters":
			if args != nil {
				return Call{}, false
			}
			args = v
		case "id":
			var id string
			if json.Unmarshal(v, &id) != nil {
				return Call{}, false
			}
		case "type":
			var t string
			if json.Unmarshal(v, &t) != nil || t != "function" {
				return Call{}, false
			}
		default:
			return Call{}, false
		}
	}
	if args == nil {
		if needArgs {
			return Call{}, false
		}
		c.Arguments = "{}"
		return c, true
	}
	a, ok := argumentsText(args)
	if !ok {
		return Call{}, false
	}
	c.Arguments = a
	return c, true
}

// argumentsText compacts an arguments value, which must be an object.
// null counts as no arguments, and a string holding an object's JSON (the
// OpenAI wire form, which some models copy) as that object.
func argumentsText(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	switch {
	case string(v) == "null":
		return "{}", true
	case len(v) > 0 && v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		v = []byte(strings.TrimSpace(s))
		if len(v) == 0 || v[0] != '{' {
			return "", false
		}
	case len(v) == 0 || v[0] != '{':
		return "", false
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return "", false
	}
	return b.String(), true
}

// decodeCallList reads a non-empty JSON array of call objects (Mistral's
// form): all of them well-formed, or none is a call.
func decodeCallList(raw string) ([]Call, bool) {
	var list []json.RawMessage
	if json.Unmarshal([]byte(raw), &list) != nil || len(list) == 0 {
		return nil, false
	}
	calls := make([]Call, 0, len(list))
	for _, item := range list {
		c, ok := decodeCall(string(item), false)
		if !ok {
			return nil, false
		}
		calls = append(calls, c)
	}
	return calls, true
}

// decodeGeneric reads the Generic format's object: {"tool_calls": [...]}
// or, for a single call, {"tool_call": {...}}; nothing else may be in it.
func decodeGeneric(raw string) ([]Call, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &m) != nil || len(m) != 1 {
		return nil, false
	}
	if v, ok := m["tool_calls"]; ok {
		return decodeCallList(string(v))
	}
	if v, ok := m["tool_call"]; ok {
		c, ok := decodeCall(string(v), false)
		if !ok {
			return nil, false
		}
		return []Call{c}, true
	}
	return nil, false
}
