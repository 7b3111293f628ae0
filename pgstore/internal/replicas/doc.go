// Package replicas is a multi-process fault harness: it runs N server
// replicas, each a separate process with its own pool, cache, usage
// recorder and invalidation feed, over one real PostgreSQL, drives a
// bounded load at them and measures how they behave under faults (a
// restarted or stopped database, terminated or hung listening
// connections, a lock held during flushes, a killed replica, a flood of
// unknown keys).
//
// Every replica reaches the database through two TCP proxies owned by the
// orchestrator, one for its pool and one for its listening connection, so
// that either can be frozen (a half-open network: sockets stay open, no
// byte moves) or killed on its own.
//
// The command in cmd/replicas runs the scenarios and prints a report; the
// same binary, with the "replica" subcommand, is one replica process.
package replicas
