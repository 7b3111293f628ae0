package pgstore

import (
	"testing"
	"time"
)

// TestBound: a deadline to interrupt now is kept, a far one (pgx's 15 s
// clean-up) is brought within poolCleanupLimit, and "no deadline" stays.
func TestBound(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		in   time.Time
		want func(time.Time) bool
	}{
		{"zero: no deadline", time.Time{}, time.Time.IsZero},
		{"now", now, func(got time.Time) bool { return got.Equal(now) }},
		{"past", now.Add(-time.Hour), func(got time.Time) bool { return got.Equal(now.Add(-time.Hour)) }},
		{"15 s", now.Add(15 * time.Second), func(got time.Time) bool {
			return !got.After(time.Now().Add(poolCleanupLimit)) && got.After(now)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bound(tt.in); !tt.want(got) {
				t.Errorf("bound(%v) = %v", tt.in, got)
			}
		})
	}
}

func TestPoolConfig(t *testing.T) {
	cfg, err := PoolConfig("postgres://u@127.0.0.1:5432/db?pool_max_conns=7")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 7 || cfg.ConnConfig.DialFunc == nil || cfg.ConnConfig.AfterNetConnect == nil ||
		cfg.HealthCheckPeriod != poolHealthCheck || cfg.PingTimeout != poolPingTimeout || cfg.ConnConfig.ConnectTimeout != poolConnectTimeout {
		t.Errorf("MaxConns %d, DialFunc set %v, AfterNetConnect set %v, HealthCheckPeriod %v, PingTimeout %v, ConnectTimeout %v",
			cfg.MaxConns, cfg.ConnConfig.DialFunc != nil, cfg.ConnConfig.AfterNetConnect != nil,
			cfg.HealthCheckPeriod, cfg.PingTimeout, cfg.ConnConfig.ConnectTimeout)
	}
	cfg, err = PoolConfig("postgres://u@127.0.0.1:5432/db?connect_timeout=9")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnConfig.ConnectTimeout != 9*time.Second {
		t.Errorf("connect_timeout=9 gave ConnectTimeout %v", cfg.ConnConfig.ConnectTimeout)
	}
	if _, err := PoolConfig("postgres://%zz"); err == nil {
		t.Error("a malformed connection string is an error")
	}
}
