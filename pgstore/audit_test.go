package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey/manage"
	"github.com/keygate/apikey/storetest"
)

// The store is the audit log of package manage: events go in, and come
// back newest first, by owner, by key and a page at a time.
func TestAuditLog(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t, testKeys(nil))
	at := storetest.Epoch
	events := []manage.Event{
		{At: at, Actor: "user_1", Action: "create", KeyID: "key_a", Owner: "o1", Remote: "192.0.2.1", Detail: "scopes: read"},
		{At: at.Add(time.Second), Actor: "user_1", Action: "update", KeyID: "key_a", Owner: "o1", Detail: "scopes: read → read write"},
		{At: at.Add(2 * time.Second), Actor: "user_2", Action: "revoke", KeyID: "key_b", Owner: "o2"},
	}
	for _, e := range events {
		require.NoError(t, s.Record(ctx, e))
	}
	require.Error(t, s.Record(ctx, manage.Event{KeyID: "key_c"}), "an event needs an actor and an action")
	tests := []struct {
		name string
		f    manage.EventFilter
		want []manage.Event
	}{
		{"all, newest first", manage.EventFilter{}, []manage.Event{events[2], events[1], events[0]}},
		{"one owner", manage.EventFilter{Owner: "o1"}, []manage.Event{events[1], events[0]}},
		{"one key", manage.EventFilter{KeyID: "key_b"}, []manage.Event{events[2]}},
		{"limit", manage.EventFilter{Owner: "o1", Limit: 1}, []manage.Event{events[1]}},
		{"no match", manage.EventFilter{Owner: "o3"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Events(ctx, tt.f)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
