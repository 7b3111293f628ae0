package replicas

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Proxy forwards TCP connections to a target address. Freeze stops every
// byte in both directions while keeping the sockets open (a hung,
// half-open network); Thaw lets them flow again; Blackhole is a Freeze
// whose connections never come back, as after a network partition long
// enough for TCP to give up on them: after Restore only new connections
// flow. Kill resets every connection. It is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	thawed chan struct{}      // closed while bytes flow; open while frozen
	conns  map[*pipe]struct{} // live connections
	wg     sync.WaitGroup     // the accept loop and the pipes' goroutines
	closed bool
	holing bool // a Blackhole is on: new pipes are dead too
}

// pipe is one proxied connection: the client's side and the target's.
type pipe struct {
	client net.Conn
	once   sync.Once
	done   chan struct{} // closed when the pipe is torn down
	mu     sync.Mutex
	server net.Conn // nil until dialled
	dead   bool     // caught by a Blackhole: never forwards again (Proxy.mu)
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, thawed: make(chan struct{}), conns: make(map[*pipe]struct{})}
	close(p.thawed)
	p.wg.Go(p.accept)
	return p, nil
}

// Addr returns the address the proxy listens on, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Freeze stops forwarding: bytes already read wait, nothing more is read,
// new connections are accepted but not dialled through.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default: // already frozen
	}
}

// Thaw resumes forwarding.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// Blackhole freezes the proxy and marks every connection, and every one
// accepted until Restore, dead: they stay open and silent for ever.
func (p *Proxy) Blackhole() {
	p.Freeze()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holing = true
	for pp := range p.conns {
		pp.dead = true
	}
}

// Restore ends a Blackhole: new connections flow again, the dead ones
// never do.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.holing = false
	p.mu.Unlock()
	p.Thaw()
}

// Kill resets every open connection (RST, not FIN); the proxy keeps
// accepting new ones.
func (p *Proxy) Kill() {
	p.mu.Lock()
	conns := make([]*pipe, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.reset()
	}
}

// Close stops listening, resets every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Kill()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		pp := &pipe{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.conns[pp] = struct{}{}
		pp.dead = p.holing
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(pp) })
	}
}

// gate waits while the proxy is frozen, or for ever if the pipe is dead;
// it reports false when the pipe was torn down meanwhile.
func (p *Proxy) gate(pp *pipe) bool {
	p.mu.Lock()
	ch := p.thawed
	if pp.dead {
		ch = nil // never ready
	}
	p.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-pp.done:
		return false
	}
}

// serve dials the target and copies both ways until either side ends.
func (p *Proxy) serve(pp *pipe) {
	defer func() {
		pp.teardown()
		p.mu.Lock()
		delete(p.conns, pp)
		p.mu.Unlock()
	}()
	if !p.gate(pp) {
		return
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	pp.mu.Lock()
	pp.server = s
	pp.mu.Unlock()
	select {
	case <-pp.done: // reset while dialling
		_ = s.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.copy(pp, s, pp.client); pp.teardown() })
	wg.Go(func() { p.copy(pp, pp.client, s); pp.teardown() })
	wg.Wait()
}

// copy forwards src to dst, stopping at each read and write while the
// proxy is frozen.
func (p *Proxy) copy(pp *pipe, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for p.gate(pp) {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate(pp) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}
			return
		}
	}
}

// reset closes both sides with RST.
func (pp *pipe) reset() {
	pp.mu.Lock()
	conns := []net.Conn{pp.client, pp.server}
	pp.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	pp.teardown()
}

// teardown closes both sides once.
func (pp *pipe) teardown() {
	pp.once.Do(func() {
		close(pp.done)
		pp.mu.Lock()
		defer pp.mu.Unlock()
		_ = pp.client.Close()
		if pp.server != nil {
			_ = pp.server.Close()
		}
	})
}
