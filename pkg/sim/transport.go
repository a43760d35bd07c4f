package sim

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
)

// Transport returns an http.RoundTripper that runs each request through the Server in-process, with
// no sockets: the URL's host is ignored, only its path (and query) matter. A round trip blocks for the
// simulated latency and returns the request context's error as soon as that context ends (a hang
// fault lasts until then). A connection-reset fault surfaces as a *net.OpError wrapping
// syscall.ECONNRESET, as a real reset would; no response is returned with it.
func (s *Server) Transport() http.RoundTripper { return transport{s} }

type transport struct{ s *Server }

// resetError is what an in-process round trip returns for a connection-reset fault.
func resetError() error {
	return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

// RoundTrip implements http.RoundTripper.
func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	sr := req.Clone(ctx)
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	sr.RequestURI = req.URL.RequestURI()
	sr.RemoteAddr = "127.0.0.1:0"
	if sr.Host == "" {
		sr.Host = req.URL.Host
	}
	mw := &memWriter{header: make(http.Header)}
	t.s.ServeHTTP(mw, sr)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	switch {
	case mw.reset:
		return nil, resetError()
	case mw.status == 0:
		// The handler gave up without answering: the client's context ended (latency or hang).
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mw.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(mw.status) + " " + http.StatusText(mw.status),
		StatusCode:    mw.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        mw.header,
		Body:          io.NopCloser(bytes.NewReader(mw.body.Bytes())),
		ContentLength: int64(mw.body.Len()),
		Request:       req,
	}, nil
}

// memWriter is the in-process http.ResponseWriter.
type memWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	reset  bool
}

func (m *memWriter) Header() http.Header { return m.header }

func (m *memWriter) WriteHeader(status int) {
	if m.status == 0 {
		m.status = status
	}
}

func (m *memWriter) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	return m.body.Write(b)
}

func (m *memWriter) resetConn() { m.reset = true }
