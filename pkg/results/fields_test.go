package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// referenceFields is decodeFields written with encoding/json: the oracle for FuzzDecodeFields.
func referenceFields(b []byte) (scanFields, error) {
	var s scanFields
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		if !json.Valid(b) {
			return s, errors.New("invalid")
		}
		return s, errNotObject
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return s, err
	}
	str := func(name string, dst *string) error {
		var p *string
		if raw, ok := top[name]; ok {
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
		}
		if p != nil {
			*dst = *p
		}
		return nil
	}
	for name, dst := range map[string]*string{"custom_id": &s.CustomID, "status": &s.Status, "request_hash": &s.RequestHash} {
		if err := str(name, dst); err != nil {
			return s, err
		}
	}
	if raw, ok := top["cost_usd"]; ok {
		var p *float64
		if err := json.Unmarshal(raw, &p); err != nil {
			return s, err
		}
		if p != nil {
			s.CostUSD = *p
		}
	}
	if raw, ok := top["response"]; ok && string(raw) != "null" {
		var resp map[string]json.RawMessage
		if err := json.Unmarshal(raw, &resp); err != nil {
			return s, err
		}
		s.Response = true
		if sc, ok := resp["status_code"]; ok {
			var p *int
			if err := json.Unmarshal(sc, &p); err != nil {
				return s, err
			}
			if p != nil {
				s.StatusCode = *p
			}
		}
	}
	if raw, ok := top["error"]; ok && string(raw) != "null" {
		var e map[string]json.RawMessage
		if err := json.Unmarshal(raw, &e); err != nil {
			return s, err
		}
		s.Error = true
	}
	return s, nil
}

func FuzzDecodeFields(f *testing.F) {
	for _, r := range []*Result{okResult("a1", "h", "text with \"quotes\" and \\ and } ]"), errResult("b", "h", 429), errResult("c", "h", 0)} {
		for _, format := range []Format{FormatDefault, FormatOpenAI} {
			var buf bytes.Buffer
			if err := NewWriter(&buf, format, WithClock(fixedClock)).Write(r); err != nil {
				f.Fatal(err)
			}
			f.Add(bytes.TrimSpace(buf.Bytes()))
		}
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `"x"`, `12`, `{"custom_id":null}`, `{"custom_id":1}`,
		`{"custom\u005fid":"esc","status":"ok"}`, `{"custom_id":"a\"b\\","status":"error"}`,
		`{"custom_id":"a","custom_id":"b"}`, `{"CUSTOM_ID":"a","status":"ok"}`,
		`{"custom_id":"\xff\xfe","status":"ok"}`, `{"custom_id":"a","response":{"status_code":200.5}}`,
		`{"custom_id":"a","response":{"status_code":2e2}}`, `{"custom_id":"a","response":"x"}`,
		`{"custom_id":"a","response":{"body":{"status_code":500},"status\u005fcode":200},"error":null}`,
		`{"custom_id":"a","error":[]}`, `{"custom_id":"a","error":{"x":[{"y":"}"}]}}`,
		` { "custom_id" : "a" , "status" : "ok" } `, `{"custom_id":"a"`, "{\"custom_id\":\"a\x00\"}",
		`{"custom_id":"a","response":{"status_code":99999999999999999999}}`,
		`{"custom_id":"a","cost_usd":0.25,"cost_usd":null}`, `{"custom_id":"a","cost_usd":"1"}`, `{"custom_id":"a","cost_usd":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got scanFields
		err := decodeFields(b, &got)
		want, werr := referenceFields(b)
		if !json.Valid(b) {
			if !isSyntax(err) {
				t.Fatalf("invalid JSON %q: error %v is not a syntax error", b, err)
			}
			return
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, reference error %v", b, err, werr)
		}
		if err == nil && got != want {
			t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
		}
	})
}
