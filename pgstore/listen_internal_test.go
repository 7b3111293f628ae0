package pgstore

import (
	"testing"
	"time"
)

// TestListenConfigDefaults: a zero field of ListenConfig takes its
// documented default, and a set one is kept.
func TestListenConfigDefaults(t *testing.T) {
	noop := func(Invalidation) {}
	tests := []struct {
		name                      string
		in                        ListenConfig
		minB, maxB, poll, timeout time.Duration
	}{
		{"zero", ListenConfig{OnInvalidate: noop}, 50 * time.Millisecond, time.Second, 500 * time.Millisecond, 2 * time.Second},
		{"all set", ListenConfig{OnInvalidate: noop, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, PollInterval: 20 * time.Millisecond, Timeout: time.Second},
			10 * time.Millisecond, 40 * time.Millisecond, 20 * time.Millisecond, time.Second},
		{"MinBackoff above the default MaxBackoff", ListenConfig{OnInvalidate: noop, MinBackoff: 10 * time.Second},
			10 * time.Second, 10 * time.Second, 500 * time.Millisecond, 2 * time.Second},
		{"MaxBackoff alone", ListenConfig{OnInvalidate: noop, MaxBackoff: 3 * time.Second},
			50 * time.Millisecond, 3 * time.Second, 500 * time.Millisecond, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if got.MinBackoff != tt.minB || got.MaxBackoff != tt.maxB || got.PollInterval != tt.poll || got.Timeout != tt.timeout {
				t.Errorf("MinBackoff %v, MaxBackoff %v, PollInterval %v, Timeout %v; want %v, %v, %v, %v",
					got.MinBackoff, got.MaxBackoff, got.PollInterval, got.Timeout, tt.minB, tt.maxB, tt.poll, tt.timeout)
			}
		})
	}
}
