package toolcall

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse splits a whole output into content (the text outside calls,
// joined and trimmed) and calls. Malformed call text (bad JSON, an
// unknown shape, an unterminated block) is not an error: it stays in the
// content and is not a call.
func (f Format) Parse(text string) (content string, calls []Call) {
	s := NewStream(f)
	content = s.Push(text)
	rest, calls := s.Finish()
	return content + rest, calls
}

// Stream splits streamed output. Text that is surely content is released
// at once; from the start of a possible call marker on, text is held, as a
// stop-string matcher holds a possible prefix, until it is known to be a
// call, or content after all. Whitespace is held too while it may yet be
// trimmed off the end of the content, and so is an incomplete UTF-8
// sequence at the end of a push (it could complete to a space). Parse is a
// Stream fed all at once, so the two agree however the text is split.
//
// A Stream is not safe for concurrent use.
type Stream struct {
	f       Format
	buf     []byte // text not yet decided (bytes: appending to a string would copy it all on every push)
	base    int    // the offset of buf in the whole output
	started bool   // a call or non-whitespace content was decided
	seq     bool   // Llama3: just after a call, where ";" may start another
	trim    trimmer
	calls   []Call
	scan    cachedScan
}

// NewStream starts splitting the output of a model of format f.
func NewStream(f Format) *Stream {
	switch f {
	case Hermes, Llama3, Mistral:
	default:
		f = Generic
	}
	return &Stream{f: f}
}

// Push takes the next text of the output and returns the content that can
// be released now.
func (s *Stream) Push(text string) (content string) {
	s.buf = append(s.buf, text...)
	return s.run(false)
}

// Finish ends the output: it returns the content not released yet (the
// held text decided as with Parse) and all the calls.
func (s *Stream) Finish() (content string, calls []Call) {
	content = s.run(true)
	content += s.trim.finish()
	return content, s.calls
}

// decision is a step's verdict on the first n bytes of the undecided text:
// the calls they hold, or (calls nil) content. n == 0: more text is needed.
type decision struct {
	n     int
	calls []Call
}

func (s *Stream) run(final bool) string {
	var out strings.Builder
	for len(s.buf) > 0 {
		var d decision
		switch s.f {
		case Hermes:
			d = s.stepHermes(final)
		case Llama3:
			d = s.stepLlama3(final)
		case Mistral:
			d = s.stepMistral(final)
		default:
			d = s.stepGeneric(final)
		}
		if d.n == 0 {
			if !final {
				break
			}
			d = decision{n: len(s.buf)} // steps always decide when final; be safe
		}
		if d.calls != nil {
			s.calls = append(s.calls, d.calls...)
			s.started = true
		} else {
			piece := string(s.buf[:d.n])
			if strings.TrimLeft(piece, " \t\r\n") != "" {
				s.started = true
			}
			out.WriteString(s.trim.add(piece))
		}
		s.buf = s.buf[d.n:]
		s.base += d.n
	}
	return out.String()
}

func content(n int) decision           { return decision{n: n} }
func called(n int, c ...Call) decision { return decision{n: n, calls: c} }

// more is the verdict when the held text may still go either way: wait
// for more text or, at the end of the output, take the first n bytes (the
// marker) as content, after which scanning resumes.
func more(final bool, n int) decision {
	if final {
		return content(n)
	}
	return decision{}
}

// upToMarker releases the text before where marker might start: all of it
// but a tail that is a proper prefix of marker (all of it when final).
func upToMarker(buf []byte, marker string, final bool) decision {
	if final {
		return content(len(buf))
	}
	for l := min(len(marker)-1, len(buf)); l > 0; l-- {
		if bytes.HasSuffix(buf, []byte(marker[:l])) {
			return content(len(buf) - l)
		}
	}
	return content(len(buf))
}

// json scans the JSON value starting at buf[at:], resuming the scan of the
// previous push when it started at the same place.
func (s *Stream) json(at int) (scanStatus, int) {
	st, end := s.scan.at(s.base+at, s.buf[at:])
	return st, end + at
}

func skipSpace(s []byte, i int) int {
	for i < len(s) && isJSONSpace(s[i]) {
		i++
	}
	return i
}

// stepHermes: a call is "<tool_call>" JSON "</tool_call>" (whitespace
// around the JSON), anywhere in the output. A marker not followed by a
// well-formed call is content, and scanning goes on right after it.
func (s *Stream) stepHermes(final bool) decision {
	i := bytes.Index(s.buf, []byte(hermesOpen))
	switch {
	case i < 0:
		return upToMarker(s.buf, hermesOpen, final)
	case i > 0:
		return content(i)
	}
	const at = len(hermesOpen)
	st, end := s.json(at)
	switch st {
	case scanBad:
		return content(at)
	case scanMore:
		return more(final, at)
	}
	c, ok := decodeCall(string(s.buf[at:end]), false)
	if !ok {
		return content(at)
	}
	j := skipSpace(s.buf, end)
	rest := s.buf[j:]
	switch {
	case bytes.HasPrefix(rest, []byte(hermesClose)):
		return called(j+len(hermesClose), c)
	case strings.HasPrefix(hermesClose, string(rest)):
		return more(final, at)
	}
	return content(at)
}

// stepLlama3: calls are JSON objects with "name" and "parameters", after
// <|python_tag|> anywhere or bare at the start of the output, and further
// calls follow each after ";".
func (s *Stream) stepLlama3(final bool) decision {
	if s.seq {
		if d, ok := s.nextInSequence(final); ok {
			return d
		}
		s.seq = false
	}
	if !s.started {
		j := skipSpace(s.buf, 0)
		if j > 0 {
			return content(j)
		}
		if s.buf[0] == '{' {
			switch st, end := s.json(0); st {
			case scanMore:
				return more(final, 1)
			case scanDone:
				if c, ok := decodeCall(string(s.buf[:end]), true); ok {
					s.seq = true
					return called(end, c)
				}
			}
			return content(1)
		}
	}
	i := bytes.Index(s.buf, []byte(pythonTag))
	switch {
	case i < 0:
		return upToMarker(s.buf, pythonTag, final)
	case i > 0:
		return content(i)
	}
	at := skipSpace(s.buf, len(pythonTag))
	if at == len(s.buf) {
		return more(final, len(pythonTag))
	}
	st, end := s.json(at)
	switch st {
	case scanBad:
		return content(len(pythonTag))
	case scanMore:
		return more(final, len(pythonTag))
	}
	c, ok := decodeCall(string(s.buf[at:end]), false)
	if !ok {
		return content(len(pythonTag))
	}
	s.seq = true
	return called(end, c)
}

// nextInSequence looks for `; {call}` after a Llama3 call. ok false: there
// is none, and the text is scanned as usual from here.
func (s *Stream) nextInSequence(final bool) (decision, bool) {
	j := skipSpace(s.buf, 0)
	if j == len(s.buf) {
		return decision{}, !final
	}
	if s.buf[j] != ';' {
		return decision{}, false
	}
	at := skipSpace(s.buf, j+1)
	if at == len(s.buf) {
		if final {
			// A ";" after the last call, as the models write it at times:
			// part of the calls, not content.
			return decision{n: at, calls: []Call{}}, true
		}
		return decision{}, true
	}
	if s.buf[at] != '{' {
		return decision{}, false
	}
	st, end := s.json(at)
	switch st {
	case scanMore:
		return decision{}, !final
	case scanDone:
		if c, ok := decodeCall(string(s.buf[at:end]), false); ok {
			return called(end, c), true
		}
	}
	return decision{}, false
}

// stepMistral: a call list is "[TOOL_CALLS]" and a JSON array of call
// objects (or a single object), or "[TOOL_CALLS]" name "[ARGS]" and the
// arguments object (with an optional "[CALL_ID]" id before "[ARGS]"),
// anywhere in the output.
func (s *Stream) stepMistral(final bool) decision {
	i := bytes.Index(s.buf, []byte(mistralCalls))
	switch {
	case i < 0:
		return upToMarker(s.buf, mistralCalls, final)
	case i > 0:
		return content(i)
	}
	const m = len(mistralCalls)
	at := skipSpace(s.buf, m)
	if at == len(s.buf) {
		return more(final, m)
	}
	if c := s.buf[at]; c == '[' || c == '{' {
		st, end := s.json(at)
		switch st {
		case scanBad:
			return content(m)
		case scanMore:
			return more(final, m)
		}
		if c == '[' {
			if calls, ok := decodeCallList(string(s.buf[at:end])); ok {
				return called(end, calls...)
			}
		} else if call, ok := decodeCall(string(s.buf[at:end]), false); ok {
			return called(end, call)
		}
		return content(m)
	}
	return s.mistralNamed(final, at)
}

// mistralNamed reads the [TOOL_CALLS]name[CALL_ID]id[ARGS]{...} form from
// the name at buf[at:].
func (s *Stream) mistralNamed(final bool, at int) decision {
	const m = len(mistralCalls)
	j := at
	for j < len(s.buf) && isNameByte(s.buf[j]) {
		j++
	}
	if j == at {
		return content(m)
	}
	name := string(s.buf[at:j])
	if bytes.HasPrefix(s.buf[j:], []byte(mistralID)) {
		j += len(mistralID)
		k := j
		for j < len(s.buf) && isIDByte(s.buf[j]) {
			j++
		}
		if j == k && j < len(s.buf) {
			return content(m)
		}
	}
	rest := s.buf[j:]
	if !bytes.HasPrefix(rest, []byte(mistralArgs)) {
		if strings.HasPrefix(mistralArgs, string(rest)) || strings.HasPrefix(mistralID, string(rest)) {
			return more(final, m)
		}
		return content(m)
	}
	j += len(mistralArgs)
	st, end := s.json(j)
	switch st {
	case scanBad:
		return content(m)
	case scanMore:
		return more(final, m)
	}
	args, ok := argumentsText(s.buf[j:end])
	if !ok {
		return content(m)
	}
	return called(end, Call{Name: name, Arguments: args})
}

// isNameByte: what a tool name is made of (OpenAI's a-z, A-Z, 0-9, _ and
// -, and the dots some clients use).
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '-' || c == '.'
}

func isIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c)
}

// stepGeneric: the one call object is bare JSON at the start of the
// output; after anything else, all is content.
func (s *Stream) stepGeneric(final bool) decision {
	if !s.started {
		j := skipSpace(s.buf, 0)
		if j > 0 {
			return content(j)
		}
		if s.buf[0] == '{' {
			switch st, end := s.json(0); st {
			case scanMore:
				return more(final, 1)
			case scanDone:
				if calls, ok := decodeGeneric(string(s.buf[:end])); ok {
					return called(end, calls...)
				}
			}
			return content(1)
		}
	}
	return content(len(s.buf))
}

// cachedScan keeps the JSON scan of the held text between pushes, so that
// a long call is scanned once, not once per push.
type cachedScan struct {
	start int // offset of the scanned text in the whole output
	fed   int // bytes fed
	valid bool
	sc    jsonScanner
	st    scanStatus
	end   int
}

// at scans text, the output from offset start to the end of what was
// pushed; the end it returns is relative to text.
func (c *cachedScan) at(start int, text []byte) (scanStatus, int) {
	if !c.valid || c.start != start || c.fed > len(text) {
		*c = cachedScan{start: start, valid: true}
	}
	if c.st == scanMore {
		c.st, c.end = c.sc.feed(text[c.fed:])
		c.fed = len(text)
	}
	return c.st, c.end
}

// trimmer releases content such that all it ever releases is the
// strings.TrimSpace of all it was given, however that was split: leading
// whitespace is dropped, trailing whitespace held until more content
// follows, and so is the start of an incomplete UTF-8 sequence.
type trimmer struct {
	started bool
	held    string
}

func (t *trimmer) add(p string) string {
	h := t.held + p
	cut := len(h) - partialRune(h)
	body, tail := h[:cut], h[cut:]
	if !t.started {
		body = strings.TrimLeftFunc(body, unicode.IsSpace)
		if body == "" {
			t.held = tail
			return ""
		}
		t.started = true
	}
	out := strings.TrimRightFunc(body, unicode.IsSpace)
	t.held = body[len(out):] + tail
	return out
}

func (t *trimmer) finish() string {
	h := t.held
	t.held = ""
	if !t.started {
		h = strings.TrimLeftFunc(h, unicode.IsSpace)
	}
	return strings.TrimRightFunc(h, unicode.IsSpace)
}

// partialRune is the length of an incomplete UTF-8 sequence ending s.
func partialRune(s string) int {
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(s[i]) {
			if utf8.FullRuneInString(s[i:]) {
				return 0
			}
			return len(s) - i
		}
	}
	return 0
}
