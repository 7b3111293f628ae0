package replicas

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo starts a TCP echo server and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through c and reports whether it came back
// within d.
func roundTrip(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestProxy(t *testing.T) {
	p, err := NewProxy(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	old := dial()
	if !roundTrip(t, old, time.Second) {
		t.Fatal("no echo through the proxy")
	}

	p.Freeze()
	if roundTrip(t, old, 100*time.Millisecond) {
		t.Fatal("bytes moved while frozen")
	}
	p.Thaw()
	if !roundTrip(t, dial(), time.Second) {
		t.Fatal("no echo after Thaw")
	}

	caught := dial()
	p.Blackhole()
	during := dial()
	if roundTrip(t, caught, 100*time.Millisecond) {
		t.Fatal("bytes moved in a blackhole")
	}
	p.Restore()
	if !roundTrip(t, dial(), time.Second) {
		t.Fatal("a new connection does not work after Restore")
	}
	for name, c := range map[string]net.Conn{"open before": caught, "opened during": during} {
		if roundTrip(t, c, 200*time.Millisecond) {
			t.Errorf("a connection %s the blackhole came back", name)
		}
	}
}
