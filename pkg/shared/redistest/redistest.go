// Package redistest runs a real redis-server for tests: on a free loopback port, without
// persistence, in a temporary directory, stopped when the test ends. It can kill and restart the
// server on the same port, for tests of what happens when Redis goes away mid-run.
//
// It needs the redis-server binary (Debian package redis-server) on PATH or in $REDIS_SERVER.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts redis-server on a free loopback port and waits until it answers PING. The test fails
// when the binary is missing or the server does not come up within 10 s; the server is killed at the
// test's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("REDIS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			t.Fatalf("redistest: redis-server not found (install the Debian package: apt-get install -y redis-server, or set $REDIS_SERVER): %v", err)
		}
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	t.Cleanup(s.Kill)
	s.start()
	return s
}

// Addr returns host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns redis://127.0.0.1:PORT/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Kill stops the server with SIGKILL and waits for it to exit; all its data is lost (it never
// persists). Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server (if it runs) and starts an empty one on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Do sends one command in the inline protocol and returns the first line of the reply, for tests
// that inspect the server without a client library (e.g. Do("DBSIZE") == ":3").
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", strings.Join(args, " ")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", "")
	out, err := os.Create(s.dir + "/redis.log")
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	defer out.Close() // the child has its own copy of the descriptor
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: starting %s: %v", s.bin, err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if r, err := s.Do("PING"); err == nil && r == "+PONG" {
			return
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(s.dir + "/redis.log")
			s.t.Fatalf("redistest: redis-server on %s did not answer PING within 10 s; its log:\n%s", s.Addr(), log)
		case <-tick.C:
		}
	}
}

// freePort asks the kernel for a free loopback port. Another process could take it before
// redis-server binds it; the PING wait then fails loudly rather than testing the wrong server.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
