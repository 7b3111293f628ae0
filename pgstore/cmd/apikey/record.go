package main

import (
	"cmp"
	"context"
	"fmt"

	"github.com/keygate/apikey"
	"github.com/keygate/apikey/manage"
)

// actor is who the audit log says did the tool's actions: $APIKEY_ACTOR,
// else "cli:" and the user's login name.
func (a *app) actor() string {
	if actor := a.getenv(envActor); actor != "" {
		return actor
	}
	return "cli:" + cmp.Or(a.getenv("USER"), a.getenv("LOGNAME"), "unknown")
}

// record files an action on key k in the store's audit log, when it keeps
// one (PostgreSQL), as the API Keys page does. The action is done: a
// failure to record it is a warning, not an error.
func (a *app) record(ctx context.Context, s store, action string, k *apikey.Key, detail string) {
	log, ok := s.(manage.AuditSink)
	if !ok {
		return
	}
	e := manage.Event{At: a.now().UTC(), Actor: a.actor(), Action: action, KeyID: k.ID, Owner: k.Owner, Detail: detail}
	if err := a.call(ctx, func(ctx context.Context) error { return log.Record(ctx, e) }); err != nil {
		fmt.Fprintf(a.stderr, "apikey: warning: the %s of %s is done but not in the audit log: %v\n", action, k.ID, err)
	}
}
