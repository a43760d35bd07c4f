package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The hostile-input tests of issue 17 (rows 10-12), through the commands a user runs.

func TestInvalidUTF8IsAnInputError(t *testing.T) {
	in := filepath.Join(t.TempDir(), "latin1.jsonl")
	data := `{"id":"a","prompt":"fine"}` + "\n" + `{"id":"b","prompt":"caf` + "\xe9 au lait" + `"}` + "\n"
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"estimate", "select", "run"} {
		io, out, errOut := testStreams()
		f := &Factory{IO: io, Getenv: fixtureEnv(), Now: time.Now}
		args := []string{cmd, in, "-c", fixtureConfig}
		if cmd == "run" {
			args = append(args, "-o", in+".out")
		}
		code := Execute(context.Background(), f, args)
		msg := errOut.String()
		if code != ExitUsage || !strings.Contains(msg, "latin1.jsonl:2: prompt: invalid UTF-8 (byte 0xe9 at offset 23") {
			t.Errorf("%s: exit %d, stderr %q; want 2 naming latin1.jsonl:2 and the field", cmd, code, msg)
		}
		if out.Len() != 0 {
			t.Errorf("%s: stdout %q", cmd, out)
		}
	}
	if _, err := os.Stat(in + ".out"); err == nil {
		t.Error("run created an output for an input it refused")
	}
}
