package toolcall

// scanStatus is where a JSON scan stands.
type scanStatus int

const (
	scanMore scanStatus = iota // a valid prefix: more text may complete it
	scanDone                   // a complete value
	scanBad                    // no continuation makes it valid JSON
)

// scanState is a jsonScanner's position in the JSON syntax.
type scanState int

const (
	stBegin     scanState = iota // before the top-level value
	stObjFirst                   // after '{': a key or '}'
	stObjKey                     // after ',' in an object: a key
	stColon                      // after a key: ':'
	stValue                      // a value
	stArrFirst                   // after '[': a value or ']'
	stAfterElem                  // after a value inside a container: ',' or the close
	stString                     // inside a string
	stEscape                     // after '\' in a string
	stHex                        // in the hex digits of \uXXXX
	stNeg                        // after a number's '-'
	stZero                       // a number's leading 0
	stInt                        // a number's integer digits
	stDot                        // after a number's '.'
	stFrac                       // a number's fraction digits
	stExpMark                    // after a number's 'e'
	stExpSign                    // after the exponent's sign
	stExp                        // the exponent's digits
	stLiteral                    // inside true, false or null
	stDone                       // the top-level value is complete
	stBad                        // invalid
)

// jsonScanner checks JSON syntax one byte at a time, so that a stream can
// tell where a call's JSON ends, or that it can no longer be JSON, without
// rescanning the text held so far on every push. Only an object or an
// array is accepted at the top level (every call format writes one), which
// also means the end of the value is known at its last byte.
type jsonScanner struct {
	state scanState
	stack []byte // open containers, '{' or '['
	key   bool   // the string being scanned is an object key
	rest  string // the bytes left of a literal
	hex   int    // hex digits left of a \u escape
	n     int    // bytes consumed
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// feed scans s (the text after what was fed before) and returns the status
// with, when done, the end of the value as an offset counted from the first
// byte ever fed.
func (j *jsonScanner) feed(s []byte) (scanStatus, int) {
	for i := 0; i < len(s); i++ {
		if j.state == stDone || j.state == stBad {
			break
		}
		j.step(s[i])
		j.n++
	}
	switch j.state {
	case stDone:
		return scanDone, j.n
	case stBad:
		return scanBad, 0
	}
	return scanMore, 0
}

func (j *jsonScanner) step(c byte) {
	switch j.state {
	case stBegin:
		switch {
		case isJSONSpace(c):
		case c == '{':
			j.push(c, stObjFirst)
		case c == '[':
			j.push(c, stArrFirst)
		default:
			j.state = stBad
		}
	case stObjFirst, stObjKey:
		switch {
		case isJSONSpace(c):
		case c == '"':
			j.state, j.key = stString, true
		case c == '}' && j.state == stObjFirst:
			j.pop()
		default:
			j.state = stBad
		}
	case stColon:
		switch {
		case isJSONSpace(c):
		case c == ':':
			j.state = stValue
		default:
			j.state = stBad
		}
	case stValue:
		if !isJSONSpace(c) {
			j.value(c)
		}
	case stArrFirst:
		switch {
		case isJSONSpace(c):
		case c == ']':
			j.pop()
		default:
			j.value(c)
		}
	case stAfterElem:
		j.afterElem(c)
	case stString:
		switch {
		case c == '"':
			if j.key {
				j.state = stColon
			} else {
				j.state = stAfterElem
			}
		case c == '\\':
			j.state = stEscape
		case c < 0x20:
			j.state = stBad
		}
	case stEscape:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j.state = stString
		case 'u':
			j.state, j.hex = stHex, 4
		default:
			j.state = stBad
		}
	case stHex:
		if !isHex(c) {
			j.state = stBad
			return
		}
		if j.hex--; j.hex == 0 {
			j.state = stString
		}
	case stNeg:
		switch {
		case c == '0':
			j.state = stZero
		case '1' <= c && c <= '9':
			j.state = stInt
		default:
			j.state = stBad
		}
	case stZero, stInt, stFrac, stExp:
		switch {
		case isDigit(c) && j.state != stZero:
		case c == '.' && (j.state == stZero || j.state == stInt):
			j.state = stDot
		case (c == 'e' || c == 'E') && j.state != stExp:
			j.state = stExpMark
		default:
			// The number ended before c: c belongs to the container.
			j.afterElem(c)
		}
	case stDot:
		if isDigit(c) {
			j.state = stFrac
		} else {
			j.state = stBad
		}
	case stExpMark:
		switch {
		case c == '+' || c == '-':
			j.state = stExpSign
		case isDigit(c):
			j.state = stExp
		default:
			j.state = stBad
		}
	case stExpSign:
		if isDigit(c) {
			j.state = stExp
		} else {
			j.state = stBad
		}
	case stLiteral:
		if c != j.rest[0] {
			j.state = stBad
			return
		}
		if j.rest = j.rest[1:]; j.rest == "" {
			j.state = stAfterElem
		}
	}
}

// value starts a value at c.
func (j *jsonScanner) value(c byte) {
	switch {
	case c == '{':
		j.push(c, stObjFirst)
	case c == '[':
		j.push(c, stArrFirst)
	case c == '"':
		j.state, j.key = stString, false
	case c == '-':
		j.state = stNeg
	case c == '0':
		j.state = stZero
	case '1' <= c && c <= '9':
		j.state = stInt
	case c == 't':
		j.state, j.rest = stLiteral, "rue"
	case c == 'f':
		j.state, j.rest = stLiteral, "alse"
	case c == 'n':
		j.state, j.rest = stLiteral, "ull"
	default:
		j.state = stBad
	}
}

// afterElem takes c after a value inside the innermost container.
func (j *jsonScanner) afterElem(c byte) {
	top := j.stack[len(j.stack)-1]
	switch {
	case isJSONSpace(c):
		j.state = stAfterElem
	case c == ',' && top == '{':
		j.state = stObjKey
	case c == ',' && top == '[':
		j.state = stValue
	case c == '}' && top == '{', c == ']' && top == '[':
		j.pop()
	default:
		j.state = stBad
	}
}

func (j *jsonScanner) push(c byte, next scanState) {
	j.stack = append(j.stack, c)
	j.state = next
}

func (j *jsonScanner) pop() {
	j.stack = j.stack[:len(j.stack)-1]
	if len(j.stack) == 0 {
		j.state = stDone
	} else {
		j.state = stAfterElem
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
