package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Pool is a small fixed-size pool of pgx connections.
//
// It exists because pgx's own pgxpool needs github.com/jackc/puddle/v2,
// which is not in this module's go.sum; once it is, Store can move to
// pgxpool without changing its API. A connection is handed to one caller at
// a time; connections returned broken or inside a transaction are closed.
type Pool struct {
	cfg  *pgx.ConnConfig
	sem  chan struct{}
	mu   sync.Mutex
	idle []*pgx.Conn
	done bool
}

// ErrPoolClosed is returned by Acquire after Close.
var ErrPoolClosed = errors.New("hss/store: pool closed")

// NewPool parses dsn (a libpq URL or key=value string) and opens one
// connection to check the server is reachable. max bounds the number of
// open connections (values < 1 mean 8).
func NewPool(ctx context.Context, dsn string, max int) (*Pool, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("hss/store: parse DSN: %w", err)
	}
	if max < 1 {
		max = 8
	}
	p := &Pool{cfg: cfg, sem: make(chan struct{}, max)}
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	p.Release(c)
	return p, nil
}

// Acquire returns a connection for the caller's exclusive use, waiting for
// a free slot until ctx ends. Give it back with Release.
func (p *Pool) Acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("hss/store: acquire connection: %w", ctx.Err())
	}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		<-p.sem
		return nil, ErrPoolClosed
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		<-p.sem
		return nil, fmt.Errorf("hss/store: connect: %w", err)
	}
	return c, nil
}

// Release gives c back to the pool (or closes it when it is broken, inside
// a transaction, or the pool is closed).
func (p *Pool) Release(c *pgx.Conn) {
	defer func() { <-p.sem }()
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' || c.PgConn().IsBusy() {
		c.Close(context.Background())
		return
	}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		c.Close(context.Background())
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// Close closes the idle connections; connections in use are closed when
// released.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.done = nil, true
	p.mu.Unlock()
	for _, c := range idle {
		c.Close(context.Background())
	}
}
