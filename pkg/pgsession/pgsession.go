// Package pgsession sets the PostgreSQL session parameters of the
// functions' connection pools (HSS, S-CSCF, P-CSCF): each is a default
// that a parameter in the DSN overrides, e.g.
// `postgres://…/ims?enable_seqscan=on&synchronous_commit=on`.
package pgsession

import (
	"net"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imscore/imscore/pkg/rawsock"
)

// Default sets run-time parameter name to value on every connection made
// with cfg, unless the DSN already chose a value for it.
func Default(cfg *pgx.ConnConfig, name, value string) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, set := cfg.RuntimeParams[name]; !set {
		cfg.RuntimeParams[name] = value
	}
}

// PreferIndexScans sets enable_seqscan = off. Every statement of the
// signalling hot paths finds its rows by key, but the runtime tables they
// read (S-CSCF assignments, registrations, contacts) start empty and grow
// by thousands of rows a second in a registration storm after an outage.
// Autovacuum analyses such a table while it is small, PostgreSQL then
// plans the pools' prepared statements with a sequential scan (cheaper
// for a few rows) and keeps that plan until the next automatic analysis,
// up to a minute later: meanwhile every request scans the whole growing
// table (measured: HSS's PostgreSQL CPU per first registration 1.0 ms
// with a fresh table, 2.8 ms after 12,000 registrations on stale
// statistics; `go test -bench CxRegistrationStorm ./hss/`). With
// sequential scans disabled the planner takes the index whatever the
// statistics say; a statement with no usable index still scans.
func PreferIndexScans(cfg *pgx.ConnConfig) { Default(cfg, "enable_seqscan", "off") }

// AsyncCommit sets synchronous_commit = off: a commit no longer waits for
// the fsync of its WAL record. The row is still written before the
// caller goes on and visible to every reader; a crash of the database
// server (not of the caller) can lose the commits of the last fraction
// of a second (the WAL writer flushes every wal_writer_delay, 200 ms by
// default). For state the UEs re-create by registering again (S-CSCF
// bindings, P-CSCF contacts), never for the HSS's SQNs and assignments.
func AsyncCommit(cfg *pgx.ConnConfig) { Default(cfg, "synchronous_commit", "off") }

// RawSockets makes cfg's connections read and write with raw system calls
// (pkg/rawsock: no wake-up of the runtime's monitor thread per round trip
// of a process that was idle), keeping cfg's dialler and its settings.
// A configuration without a dialler gets net's, with pgx's keep-alive.
func RawSockets(cfg *pgx.ConnConfig) {
	dial := cfg.DialFunc
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 5 * time.Minute}).DialContext
	}
	cfg.DialFunc = rawsock.WrapDial(dial)
}
