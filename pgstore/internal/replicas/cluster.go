package replicas

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/pgstore"
	"github.com/keygate/apikey/pgstore/internal/pgtest"
)

// replicaPackage is the package of the replica binary, built from the
// pgstore module.
const replicaPackage = "github.com/keygate/apikey/pgstore/internal/replicas/cmd/replicas"

// env is what every scenario of a run shares: the server and the binary.
type env struct {
	server *pgtest.Server
	bin    string // the replica binary
	dir    string // temporary directory: the binary, the replicas' logs
	opts   Options
	log    io.Writer
}

// build compiles the replica binary into dir.
func build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "replica")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, replicaPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the replica (run from the pgstore module): %w\n%s", err, out)
	}
	return bin, nil
}

func (e *env) logf(format string, args ...any) {
	if e.log != nil {
		fmt.Fprintf(e.log, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
}

// cluster is one scenario's world: a fresh database, an admin store that
// reaches it directly, and N replica processes behind their proxies.
type cluster struct {
	env      *env
	db       string
	dsn      string
	admin    *pgxpool.Pool
	store    *pgstore.Store
	replicas []*proc
}

// proc is one replica process and its two proxies.
type proc struct {
	idx         int
	cmd         *exec.Cmd
	url         string
	poolProxy   *Proxy
	listenProxy *Proxy
	final       chan Stats // the stats it printed when stopping
	exited      chan struct{}
	logFile     *os.File
}

// newCluster creates and migrates a database and starts n replicas.
func (e *env) newCluster(ctx context.Context, n int) (*cluster, error) {
	db, dsn, err := e.server.CreateDatabase(ctx)
	if err != nil {
		return nil, err
	}
	c := &cluster{env: e, db: db, dsn: dsn}
	if err := c.connect(ctx); err != nil {
		c.close()
		return nil, err
	}
	for i := range n {
		p, err := c.startReplica(ctx, i)
		if err != nil {
			c.close()
			return nil, err
		}
		c.replicas = append(c.replicas, p)
	}
	if err := c.waitListening(ctx); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// connect opens the admin pool and migrates.
func (c *cluster) connect(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, c.dsn)
	if err != nil {
		return fmt.Errorf("admin pool: %w", err)
	}
	c.admin = pool
	if c.store, err = pgstore.New(pool, pgstore.Config{Keys: Keys()}); err != nil {
		return fmt.Errorf("admin store: %w", err)
	}
	if err := c.store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// viaProxy returns dsn with its host and port replaced by addr.
func viaProxy(dsn, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("proxy address: %w", err)
	}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Host = addr
		return u.String(), nil
	}
	return dsn + " host=" + host + " port=" + port, nil // a later keyword wins
}

// target returns the host:port the cluster's DSN connects to.
func (c *cluster) target() (string, error) {
	cfg, err := pgx.ParseConfig(c.dsn)
	if err != nil {
		return "", fmt.Errorf("parse DSN: %w", err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), nil
}

// startReplica starts replica i behind two new proxies and waits for its
// port.
func (c *cluster) startReplica(ctx context.Context, i int) (*proc, error) {
	target, err := c.target()
	if err != nil {
		return nil, err
	}
	p := &proc{idx: i, final: make(chan Stats, 1), exited: make(chan struct{})}
	if p.poolProxy, err = NewProxy(target); err != nil {
		return nil, err
	}
	if p.listenProxy, err = NewProxy(target); err != nil {
		_ = p.poolProxy.Close()
		return nil, err
	}
	poolDSN, err1 := viaProxy(c.dsn, p.poolProxy.Addr())
	listenDSN, err2 := viaProxy(c.dsn, p.listenProxy.Addr())
	if err := errors.Join(err1, err2); err != nil {
		p.closeProxies()
		return nil, err
	}
	p.logFile, err = os.Create(filepath.Join(c.env.dir, fmt.Sprintf("%s-replica-%d.log", c.db, i)))
	if err != nil {
		p.closeProxies()
		return nil, fmt.Errorf("replica log: %w", err)
	}
	p.cmd = exec.Command(c.env.bin, "replica", "-pool", poolDSN, "-listen", listenDSN,
		"-interval", c.env.opts.Interval.String(), "-flush-timeout", c.env.opts.FlushTimeout.String(),
		fmt.Sprintf("-plain-pool=%t", c.env.opts.PlainPool))
	p.cmd.Stderr = p.logFile
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		p.closeProxies()
		return nil, fmt.Errorf("replica %d: %w", i, err)
	}
	if err := p.cmd.Start(); err != nil {
		p.closeProxies()
		return nil, fmt.Errorf("replica %d: %w", i, err)
	}
	port := make(chan string, 1)
	go func() {
		// Read to the end before Wait, which closes the pipe.
		p.readStdout(stdout, port)
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case pt := <-port:
		p.url = "http://127.0.0.1:" + pt
		return p, nil
	case <-p.exited:
		p.closeProxies()
		return nil, fmt.Errorf("replica %d exited at start (log %s)", i, p.logFile.Name())
	case <-time.After(30 * time.Second):
		p.kill()
		return nil, fmt.Errorf("replica %d: no port within 30 s", i)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// readStdout reads the replica's port and final stats.
func (p *proc) readStdout(r io.Reader, port chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, PortPrefix):
			port <- strings.TrimPrefix(line, PortPrefix)
		case strings.HasPrefix(line, FinalPrefix):
			var s Stats
			if json.Unmarshal([]byte(strings.TrimPrefix(line, FinalPrefix)), &s) == nil {
				p.final <- s
			}
		}
	}
}

// waitListening waits until every replica's invalidation feed is up: the
// replica says so, or (for an API without that signal) the database shows
// a listening connection per replica.
func (c *cluster) waitListening(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ready := 0
		for _, p := range c.replicas {
			if s, err := p.stats(ctx); err == nil && s.Listening {
				ready++
			}
		}
		if ready == len(c.replicas) {
			return nil
		}
		var conns int
		err := c.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, listenAppName).Scan(&conns)
		if err == nil && conns >= len(c.replicas) {
			time.Sleep(200 * time.Millisecond)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("the replicas' invalidation feeds are not up after 20 s")
}

var statsClient = &http.Client{Timeout: 5 * time.Second}

// stats fetches the replica's /stats.
func (p *proc) stats(ctx context.Context) (Stats, error) {
	var s Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/stats", nil)
	if err != nil {
		return s, err
	}
	resp, err := statsClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("replica %d stats: %w", p.idx, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("replica %d stats: %w", p.idx, err)
	}
	return s, nil
}

// allStats fetches every live replica's stats.
func (c *cluster) allStats(ctx context.Context) ([]Stats, error) {
	out := make([]Stats, len(c.replicas))
	for i, p := range c.replicas {
		select {
		case <-p.exited:
			continue
		default:
		}
		s, err := p.stats(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// stop stops the replica gracefully (SIGTERM) and returns its final
// stats.
func (p *proc) stop(timeout time.Duration) (Stats, error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.kill()
		return Stats{}, fmt.Errorf("replica %d: not stopped %v after SIGTERM", p.idx, timeout)
	}
	select {
	case s := <-p.final:
		return s, nil
	case <-time.After(time.Second):
		return Stats{}, fmt.Errorf("replica %d: no final stats (log %s)", p.idx, p.logFile.Name())
	}
}

// kill SIGKILLs the replica and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.closeProxies()
}

func (p *proc) closeProxies() {
	if p.poolProxy != nil {
		_ = p.poolProxy.Close()
	}
	if p.listenProxy != nil {
		_ = p.listenProxy.Close()
	}
	if p.logFile != nil {
		_ = p.logFile.Close()
	}
}

// stopAll stops every live replica gracefully, in parallel, and returns
// their final stats (zero for a replica already dead).
func (c *cluster) stopAll() ([]Stats, error) {
	out := make([]Stats, len(c.replicas))
	errs := make([]error, len(c.replicas))
	var wg sync.WaitGroup
	for i, p := range c.replicas {
		select {
		case <-p.exited:
			continue
		default:
		}
		wg.Go(func() {
			out[i], errs[i] = p.stop(30 * time.Second)
			p.closeProxies()
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// close kills what is left and drops the database.
func (c *cluster) close() {
	for _, p := range c.replicas {
		select {
		case <-p.exited:
			p.closeProxies()
		default:
			p.kill()
		}
	}
	if c.admin != nil {
		c.admin.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.env.server.DropDatabase(ctx, c.db); err != nil {
		c.env.logf("drop database: %v", err)
	}
}

// key is a key the harness created: its ID and the secret it sends.
type key struct {
	id     string
	secret string
}

// createKeys creates n keys through the admin store, four at a time.
func (c *cluster) createKeys(ctx context.Context, n int) ([]key, error) {
	out := make([]key, n)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				k, s, err := c.store.Create(ctx, apikey.KeySpec{Name: "replicas harness"})
				if err != nil {
					errs[w] = fmt.Errorf("create key: %w", err)
					return
				}
				out[i] = key{id: k.ID, secret: s.Reveal()}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// unknownKeys makes n well-formed keys that are never stored.
func unknownKeys(n int) ([]key, error) {
	keys := Keys()
	out := make([]key, n)
	for i := range out {
		is, err := keys.NewKey(apikey.KeySpec{Name: "unknown"})
		if err != nil {
			return nil, fmt.Errorf("make unknown key: %w", err)
		}
		out[i] = key{id: is.Key.ID, secret: is.Secret.Reveal()}
	}
	return out, nil
}

// revocation says when a revocation was sent (the start of the attempt
// that succeeded) and when it was known to have committed (that attempt
// returned): it committed in between.
type revocation struct {
	sent, commit time.Time
}

// revoke revokes k through the Go API, retrying while the database is
// unreachable (for up to 30 s).
func (c *cluster) revoke(ctx context.Context, k key) (revocation, error) {
	return c.retry(ctx, func(ctx context.Context) error { return c.store.Revoke(ctx, k.id) })
}

// revokeSQL revokes k by a plain UPDATE, as an administrator would.
func (c *cluster) revokeSQL(ctx context.Context, k key) (revocation, error) {
	return c.retry(ctx, func(ctx context.Context) error {
		_, err := c.admin.Exec(ctx, `UPDATE apikey_keys SET revoked_at = now() WHERE id = $1`, k.id)
		return err
	})
}

// retry calls f until it succeeds and returns when that attempt started
// and ended.
func (c *cluster) retry(ctx context.Context, f func(context.Context) error) (revocation, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		sent := time.Now()
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return revocation{sent: sent, commit: time.Now()}, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return revocation{}, fmt.Errorf("revoke: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// requests returns the usage the database recorded for keys.
func (c *cluster) requests(ctx context.Context, keys []key) (uint64, error) {
	var sum uint64
	for _, k := range keys {
		got, err := c.store.Get(ctx, k.id)
		if err != nil {
			return 0, fmt.Errorf("get %s: %w", k.id, err)
		}
		sum += got.Requests
	}
	return sum, nil
}
