package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// decodeFields fills s from the JSON object in b. It validates b with json.Valid (an invalid line
// yields a *json.SyntaxError) and then walks the top-level members directly, decoding only the few
// it needs; this is about twice as fast as json.Unmarshal into a struct, which matters when resuming
// from outputs of millions of lines. Keys match exactly (unlike encoding/json's case folding); a
// repeated key counts with its last value.
func decodeFields(b []byte, s *scanFields) error {
	*s = scanFields{}
	if !json.Valid(b) {
		var v struct{}
		if err := json.Unmarshal(b, &v); err != nil {
			return err // the *json.SyntaxError
		}
		return errors.New("invalid JSON")
	}
	return eachMember(b, func(key, val []byte) error {
		name, err := keyName(key)
		if err != nil {
			return err
		}
		return s.member(name, val)
	})
}

// keyName returns the raw key (quotes included) unquoted; escaped keys may still spell a field.
func keyName(key []byte) ([]byte, error) {
	if bytes.IndexByte(key, '\\') < 0 {
		return key[1 : len(key)-1], nil
	}
	var name string
	err := json.Unmarshal(key, &name)
	return []byte(name), err
}

// member applies the top-level member name (unquoted) with raw value val to s.
func (s *scanFields) member(name, val []byte) error {
	var err error
	switch string(name) {
	case "custom_id":
		s.CustomID, err = jsonString("custom_id", val)
	case "status":
		s.Status, err = jsonString("status", val)
	case "request_hash":
		s.RequestHash, err = jsonString("request_hash", val)
	case "cost_usd":
		if s.CostUSD = 0; val[0] == 'n' {
			return nil
		}
		if s.CostUSD, err = strconv.ParseFloat(string(val), 64); err != nil {
			return fmt.Errorf("cost_usd %s is not a number", val)
		}
	case "response":
		s.Response, s.StatusCode = false, 0
		switch val[0] {
		case 'n':
			return nil
		case '{':
		default:
			return errors.New("response is not an object")
		}
		s.Response = true
		return eachMember(val, func(key, val []byte) error {
			if name, err := keyName(key); err != nil || string(name) != "status_code" {
				return err
			}
			if val[0] == 'n' {
				s.StatusCode = 0
				return nil
			}
			n, err := strconv.Atoi(string(val))
			if err != nil {
				return fmt.Errorf("response.status_code %s is not an integer", val)
			}
			s.StatusCode = n
			return nil
		})
	case "error":
		switch val[0] {
		case 'n':
			s.Error = false
		case '{':
			s.Error = true
		default:
			return errors.New("error is not an object")
		}
	}
	return err
}

// jsonString decodes the JSON string val; null is "" as with encoding/json.
func jsonString(field string, val []byte) (string, error) {
	switch {
	case val[0] == 'n':
		return "", nil
	case val[0] != '"':
		return "", fmt.Errorf("%s is not a string", field)
	case bytes.IndexByte(val, '\\') < 0 && utf8.Valid(val):
		return string(val[1 : len(val)-1]), nil
	}
	var s string
	err := json.Unmarshal(val, &s)
	return s, err
}

var errNotObject = errors.New("not a JSON object")

// eachMember calls fn with the raw key (quotes included) and raw value of every member of the JSON
// object b, which must be valid JSON.
func eachMember(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return nil
	}
	for {
		kEnd := skipString(b, i)
		key := b[i:kEnd]
		i = skipSpace(b, skipSpace(b, kEnd)+1) // past ':'
		vEnd := skipValue(b, i)
		if err := fn(key, b[i:vEnd]); err != nil {
			return err
		}
		i = skipSpace(b, vEnd)
		if b[i] == '}' {
			return nil
		}
		i = skipSpace(b, i+1) // past ','
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		q := j + bytes.IndexByte(b[j:], '"')
		bs := 0
		for k := q - 1; b[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
			j++
		}
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}
