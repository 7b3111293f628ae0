package apikeyotel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keygate/apikey"
)

// world is a memory store with a few keys, behind a switch that takes it
// down.
type world struct {
	keys     apikey.KeyConfig
	mem      *apikey.MemoryStore
	store    *switchStore
	valid    *apikey.Key // read, write; owned
	readOnly *apikey.Key
	revoked  *apikey.Key
	// secrets
	validSecret, readOnlySecret, revokedSecret, unknownSecret string
}

const owner = "alice@example.com"

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	keys := apikey.KeyConfig{Formats: []*apikey.Format{apikey.FormatDefault}}
	mem, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{keys: keys, mem: mem, store: &switchStore{KeyStore: mem}}
	create := func(spec apikey.KeySpec) (*apikey.Key, string) {
		k, s, err := mem.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return k, s.Reveal()
	}
	w.valid, w.validSecret = create(apikey.KeySpec{Name: "backend", Owner: owner, Scopes: []apikey.Scope{"read", "write"}})
	w.readOnly, w.readOnlySecret = create(apikey.KeySpec{Name: "reports", Scopes: []apikey.Scope{"read"}})
	w.revoked, w.revokedSecret = create(apikey.KeySpec{Name: "old", Scopes: []apikey.Scope{"read"}})
	if err := mem.Revoke(ctx, w.revoked.ID); err != nil {
		t.Fatal(err)
	}
	other, err := apikey.NewMemoryStore(apikey.MemoryStoreConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	_, s, err := other.Create(ctx, apikey.KeySpec{Name: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	w.unknownSecret = s.Reveal()
	return w
}

func (w *world) secrets() []string {
	return []string{w.validSecret, w.readOnlySecret, w.revokedSecret, w.unknownSecret}
}

// switchStore fails every lookup while down.
type switchStore struct {
	apikey.KeyStore
	down atomic.Bool
}

var errDown = errors.New("store is down")

func (s *switchStore) Lookup(ctx context.Context, d apikey.Digest) (*apikey.Key, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.KeyStore.Lookup(ctx, d)
}

// do serves one request and returns the status.
func do(t testing.TB, h http.Handler, method, auth string) int {
	t.Helper()
	r := httptest.NewRequest(method, "/v1/reports", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })

// metrics is a ManualReader's view.
type metrics struct {
	t      testing.TB
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMetrics(t testing.TB) *metrics {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &metrics{t: t, reader: reader, mp: mp}
}

func (m *metrics) collect() metricdata.ResourceMetrics {
	m.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		m.t.Fatal(err)
	}
	return rm
}

// find returns the named metric of rm, or nil.
func find(rm metricdata.ResourceMetrics, name string) *metricdata.Metrics {
	for _, sm := range rm.ScopeMetrics {
		for i := range sm.Metrics {
			if sm.Metrics[i].Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

// attrString is a set as "k=v,k=v", sorted.
func attrString(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// points returns an integer metric's points by attributes ("" for none).
func points(t testing.TB, rm metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	m := find(rm, name)
	if m == nil {
		return nil
	}
	out := map[string]int64{}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out[attrString(p.Attributes)] = p.Value
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out[attrString(p.Attributes)] = p.Value
		}
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
	return out
}

// value returns the one point of an integer metric without attributes.
func value(t testing.TB, rm metricdata.ResourceMetrics, name string) int64 {
	t.Helper()
	p := points(t, rm, name)
	v, ok := p[""]
	if !ok || len(p) != 1 {
		t.Fatalf("%s: points %v, want one without attributes", name, p)
	}
	return v
}

// histogram returns the duration histogram's counts by attributes.
func histogram(t testing.TB, rm metricdata.ResourceMetrics) map[string]uint64 {
	t.Helper()
	m := find(rm, "apikey.verification.duration")
	if m == nil {
		return nil
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("duration: unexpected data %T", m.Data)
	}
	out := map[string]uint64{}
	for _, p := range h.DataPoints {
		out[attrString(p.Attributes)] = p.Count
	}
	return out
}

// allAttributeValues lists every attribute value of every point of rm,
// and its resource's, as strings.
func allAttributeValues(rm metricdata.ResourceMetrics) []string {
	var out []string
	add := func(s attribute.Set) {
		for _, kv := range s.ToSlice() {
			out = append(out, string(kv.Key)+"="+kv.Value.String())
		}
	}
	if rm.Resource != nil {
		add(*rm.Resource.Set())
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					add(p.Attributes)
					for _, e := range p.Exemplars {
						for _, kv := range e.FilteredAttributes {
							out = append(out, string(kv.Key)+"="+kv.Value.String())
						}
					}
				}
			default:
				out = append(out, "unscanned:"+m.Name)
			}
		}
	}
	return out
}

func equalMaps[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
