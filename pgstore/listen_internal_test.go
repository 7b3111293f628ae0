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
		name               string
		in                 ListenConfig
		minB, maxB, health time.Duration
	}{
		{"zero", ListenConfig{OnInvalidate: noop}, 50 * time.Millisecond, 5 * time.Second, 30 * time.Second},
		{"all set", ListenConfig{OnInvalidate: noop, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, HealthCheck: 20 * time.Millisecond},
			10 * time.Millisecond, 40 * time.Millisecond, 20 * time.Millisecond},
		{"MinBackoff above the default MaxBackoff", ListenConfig{OnInvalidate: noop, MinBackoff: 10 * time.Second},
			10 * time.Second, 10 * time.Second, 30 * time.Second},
		{"MaxBackoff alone", ListenConfig{OnInvalidate: noop, MaxBackoff: time.Second},
			50 * time.Millisecond, time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if got.MinBackoff != tt.minB || got.MaxBackoff != tt.maxB || got.HealthCheck != tt.health {
				t.Errorf("MinBackoff %v, MaxBackoff %v, HealthCheck %v; want %v, %v, %v",
					got.MinBackoff, got.MaxBackoff, got.HealthCheck, tt.minB, tt.maxB, tt.health)
			}
		})
	}
}
