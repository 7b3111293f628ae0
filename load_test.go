package apikey_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/usage"
)

// loadKey is a key of the load test as its clients see it.
type loadKey struct {
	secret string
	id     string
	// dead is set once Revoke (or a roll with zero grace) has returned:
	// from then on no request may be accepted with this key.
	dead atomic.Bool
	// rolled is only touched by the churn goroutine.
	rolled bool
	// Requests the clients saw accepted with this key.
	accepted atomic.Int64
}

// loadPool is a copy-on-write list of keys: clients read it without a
// lock, the churn goroutine replaces it.
type loadPool struct{ p atomic.Pointer[[]*loadKey] }

func (lp *loadPool) all() []*loadKey { return *lp.p.Load() }

func (lp *loadPool) add(k *loadKey) {
	old := lp.all()
	next := append(old[:len(old):len(old)], k)
	lp.p.Store(&next)
}

// TestLoadRevocationAndUsage runs 64 concurrent clients against a real
// loopback server (MemoryStore and usage.Recorder) while another goroutine
// creates, rolls and revokes keys. No request that started after Revoke
// returned is accepted; the usage the store records equals the accepted
// requests exactly; and nothing is left running afterwards.
func TestLoadRevocationAndUsage(t *testing.T) {
	const clients = 64
	duration := 2 * time.Second
	if testing.Short() {
		duration = 300 * time.Millisecond
	}
	before := runtime.NumGoroutine()
	ctx := context.Background()

	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	store := newMemoryStore(t, keys)
	rec, err := usage.New(store, usage.Config{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	var handled sync.Map // key ID → *atomic.Int64, counted by the protected handler
	protected := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := apikey.FromContext(r.Context())
		if !ok {
			http.Error(w, "no key in the context", http.StatusInternalServerError)
			return
		}
		n, _ := handled.LoadOrStore(k.ID, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	srv := httptest.NewServer(newMiddleware(t, apikey.Config{Keys: keys, Store: store, Usage: rec}).Handler(protected))
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	var pool loadPool
	pool.p.Store(&[]*loadKey{})
	create := func() {
		k, s, err := store.Create(ctx, apikey.KeySpec{Name: "load", Scopes: []apikey.Scope{"read"}})
		require.NoError(t, err)
		pool.add(&loadKey{secret: s.Reveal(), id: k.ID})
	}
	for i := 0; i < 16; i++ {
		create()
	}

	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	var churnErr error
	var revokes, rolls, creates int
	wg.Add(1)
	go func() { // the churn: create, roll (with and without grace), revoke
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; time.Now().Before(deadline); i++ {
			time.Sleep(500 * time.Microsecond)
			keys := pool.all()
			victim := keys[rng.IntN(len(keys))]
			switch i % 4 {
			case 0:
				k, s, err := store.Create(ctx, apikey.KeySpec{Name: "load", Scopes: []apikey.Scope{"read"}})
				if err != nil {
					churnErr = err
					return
				}
				pool.add(&loadKey{secret: s.Reveal(), id: k.ID})
				creates++
			case 1, 2:
				if victim.dead.Load() || victim.rolled {
					continue
				}
				grace := 24 * time.Hour // the old key keeps working
				if i%4 == 2 {
					grace = 0 // the old key is retired at once
				}
				k, s, err := store.Roll(ctx, victim.id, grace)
				if err != nil {
					churnErr = err
					return
				}
				victim.rolled = true
				if grace == 0 {
					victim.dead.Store(true)
				}
				pool.add(&loadKey{secret: s.Reveal(), id: k.ID})
				rolls++
			case 3:
				if victim.dead.Load() {
					continue
				}
				if err := store.Revoke(ctx, victim.id); err != nil {
					churnErr = err
					return
				}
				victim.dead.Store(true) // only now: Revoke has returned
				revokes++
			}
		}
	}()

	var total, accepted, acceptedAfterRevoke, unexpected atomic.Int64
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 99))
			for time.Now().Before(deadline) {
				keys := pool.all()
				k := keys[rng.IntN(len(keys))]
				deadAtStart := k.dead.Load() // read before the request starts
				req, err := http.NewRequest("GET", srv.URL+"/v1/things", nil)
				if err != nil {
					unexpected.Add(1)
					return
				}
				req.Header.Set("Authorization", "Bearer "+k.secret)
				resp, err := client.Do(req)
				if err != nil {
					unexpected.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				total.Add(1)
				switch {
				case resp.StatusCode == http.StatusOK && string(body) == "ok":
					accepted.Add(1)
					k.accepted.Add(1)
					if deadAtStart {
						acceptedAfterRevoke.Add(1)
					}
				case resp.StatusCode == http.StatusUnauthorized:
				default:
					unexpected.Add(1)
				}
			}
		}(uint64(c))
	}
	wg.Wait()
	require.NoError(t, churnErr)

	srv.Close()
	transport.CloseIdleConnections()
	require.NoError(t, rec.Close())

	t.Logf("%d requests in %v from %d clients: %d accepted, %d accepted after revoke; churn: %d creates, %d rolls, %d revokes",
		total.Load(), duration, clients, accepted.Load(), acceptedAfterRevoke.Load(), creates, rolls, revokes)
	assert.Zero(t, acceptedAfterRevoke.Load(), "a request that started after Revoke returned was accepted")
	assert.Zero(t, unexpected.Load(), "transport errors or statuses other than 200 and 401")
	assert.Positive(t, accepted.Load())
	assert.Positive(t, revokes)

	// Usage: exactly the accepted requests, key by key.
	stats := rec.Stats()
	assert.Zero(t, stats.Dropped)
	assert.Zero(t, stats.Pending)
	assert.EqualValues(t, accepted.Load(), stats.Flushed)
	var recorded uint64
	for _, k := range pool.all() {
		got, err := store.Get(ctx, k.id)
		require.NoError(t, err)
		recorded += got.Requests
		var served int64
		if n, ok := handled.Load(k.id); ok {
			served = n.(*atomic.Int64).Load()
		}
		require.Equal(t, k.accepted.Load(), served, "key %s: accepted by clients vs served", k.id)
		require.EqualValues(t, k.accepted.Load(), got.Requests, "key %s: usage in the store", k.id)
	}
	assert.EqualValues(t, accepted.Load(), recorded)

	// Nothing left running: server, connections, recorder, churn.
	// Eventually evaluates the condition in a goroutine of its own, hence
	// the +1.
	if !assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+1 }, 5*time.Second, 10*time.Millisecond) {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}
