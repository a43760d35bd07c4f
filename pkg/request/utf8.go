package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// invalidUTF8 returns a *fieldError when line b is not valid UTF-8, naming the JSON field that holds
// the first bad byte: the decoder would silently turn such bytes into U+FFFD and the prompt sent
// would not be the one written.
func invalidUTF8(b []byte) *fieldError {
	if utf8.Valid(b) {
		return nil
	}
	off := 0
	for off < len(b) {
		r, size := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	return &fieldError{field: fieldAt(b, off),
		msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x at offset %d of the line; save the input as UTF-8 or remove the byte)", b[off], off)}
}

// fieldAt returns the JSON path ("body.messages[1].content", "metadata.note", "" for the whole
// line) of the string, key or value that spans byte offset off of the JSON text b. It walks the
// tokens with encoding/json's decoder, which reports each token's end offset.
func fieldAt(b []byte, off int) string {
	type frame struct {
		obj       bool
		expectKey bool
		key       string
		idx       int
	}
	var stack []*frame
	path := func(stack []*frame) string {
		var sb bytes.Buffer
		for _, f := range stack {
			if f.obj {
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(f.key)
			} else {
				sb.WriteString("[" + strconv.Itoa(f.idx) + "]")
			}
		}
		return sb.String()
	}
	advance := func() { // a value of the innermost container is done
		if n := len(stack); n > 0 {
			if f := stack[n-1]; f.obj {
				f.expectKey = true
			} else {
				f.idx++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return path(stack)
		}
		end := int(dec.InputOffset())
		inside := start <= off && off < end
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{obj: true, expectKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				advance()
			}
		default:
			if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
				if inside {
					if p := path(stack[:n-1]); p != "" {
						return p + " (a key)"
					}
					return "(a key)"
				}
				s, _ := t.(string)
				stack[n-1].key, stack[n-1].expectKey = s, false
				continue
			}
			if inside {
				return path(stack)
			}
			advance()
		}
	}
}
