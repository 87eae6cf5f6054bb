package store

// SQN reservation in blocks (TS 33.102 §6.3.2, Annex C).
//
// With a block size B > 1 (EnableSQNBlocks), a MAR that finds no SQNs
// cached for its IMPI reserves max(B, n) SQNs with one durable
// UPDATE … RETURNING (the statement of B = 1), hands out the n it needs and
// keeps the rest in memory; the following MARs of that IMPI are served from
// memory after a read-only look-up, so they do not wait for a WAL flush.
//
// Safety:
//   - Every cached SQN was reserved in the database first, and the entry's
//     mutex hands each out once: no SQN is ever handed out twice, also with
//     several HSS processes on one database (reservations are disjoint; the
//     row lock serialises them).
//   - An entry is used only while the IMPI's row, read by the same MAR's
//     look-up, is still the version its reservation wrote: same id, same
//     impi.sqn and same xmin (the PostgreSQL transaction that wrote the
//     row version). Any other write to the row — a reservation by another
//     HSS process, a resynchronisation, an administrator's UPDATE (even one
//     that stores the same SQN, or changes only K/OP), a re-provisioned
//     IMPI — makes the entry stale, and the MAR reserves a new block above
//     the stored counter. ResyncSQN also drops the entry of its IMPI.
//   - An entry never holds more than B − 1 unused SQNs. A crash or restart
//     loses them, so the UE next sees an SQN at most B SEQ values
//     (B × 32 in SQN units, IND = 0) above the last one it could have
//     accepted; with B = 1 the step is 1 SEQ value, as before. TS 33.102
//     Annex C lets the HE skip SEQ values: the USIM accepts any SEQ above
//     its SEQ_MS, and at most Δ above it when it checks the optional
//     limit Δ; --sqn-block is capped at 1024 so that the jump stays far
//     below any practical Δ (aka.UE.MaxDelta in tests).

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/jackc/pgx/v5"
)

// Limits of EnableSQNBlocks.
const (
	MaxSQNBlock = 1024 // largest block (SEQ values reserved at once)
	// DefaultSQNCacheIMPIs is the number of IMPIs whose unused SQNs are
	// kept when EnableSQNBlocks gets maxIMPIs < 1. An evicted IMPI's
	// remainder is skipped.
	DefaultSQNCacheIMPIs = 100_000
)

// EnableSQNBlocks makes PairReserve and ReserveSQNs reserve SQNs in blocks
// of block (1..MaxSQNBlock) SEQ values per IMPI and keep the unused ones in
// memory for at most maxIMPIs IMPIs (least recently used first out; < 1
// means DefaultSQNCacheIMPIs). block = 1 keeps one durable reservation per
// MAR (the default of a new Store). Call it before the Store is used.
func (s *Store) EnableSQNBlocks(block, maxIMPIs int) error {
	if block < 1 || block > MaxSQNBlock {
		return fmt.Errorf("hss/store: SQN block %d, want 1..%d", block, MaxSQNBlock)
	}
	if block == 1 {
		s.sqn = nil
		return nil
	}
	if maxIMPIs < 1 {
		maxIMPIs = DefaultSQNCacheIMPIs
	}
	s.sqn = &sqnCache{block: block, max: maxIMPIs, lru: list.New(), m: map[string]*list.Element{}}
	return nil
}

// SQNBlock returns the block size in use (1: no blocks).
func (s *Store) SQNBlock() int {
	if s.sqn == nil {
		return 1
	}
	return s.sqn.block
}

// sqnCache is a bounded LRU of per-IMPI SQN remainders.
type sqnCache struct {
	block, max int
	mu         sync.Mutex
	lru        *list.List // of *sqnEntry, most recently used in front
	m          map[string]*list.Element
}

// sqnVersion identifies the version of an impi row a reservation wrote.
type sqnVersion struct {
	id   int64  // impi.id
	sqn  uint64 // impi.sqn stored
	xmin int64  // transaction that wrote the row version
}

// sqnEntry holds the unused SQNs of one IMPI: left SQNs from next on (each
// aka.NextSQN of the one before), reserved by the statement that wrote row
// version ver.
type sqnEntry struct {
	impi string
	mu   sync.Mutex
	ver  sqnVersion
	last uint64 // SQN before next (handed out or skipped)
	next uint64
	left int
}

// entry returns impi's entry, created empty when absent, and marks it most
// recently used; beyond max entries the least recently used is dropped (its
// SQNs are skipped; a goroutine still holding it may finish using it: its
// SQNs stay reserved and are handed out once).
func (c *sqnCache) entry(impi string) *sqnEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[impi]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*sqnEntry)
	}
	e := &sqnEntry{impi: impi}
	c.m[impi] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*sqnEntry).impi)
	}
	return e
}

// drop forgets impi's unused SQNs (ResyncSQN).
func (c *sqnCache) drop(impi string) {
	c.mu.Lock()
	el, ok := c.m[impi]
	if ok {
		c.lru.Remove(el)
		delete(c.m, impi)
	}
	c.mu.Unlock()
	if ok {
		e := el.Value.(*sqnEntry)
		e.mu.Lock()
		e.left = 0
		e.mu.Unlock()
	}
}

// len is the number of IMPIs cached (tests).
func (c *sqnCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// available tells how many SQNs the entry holds.
func (e *sqnEntry) available() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.left
}

// take hands out n SQNs when the entry still matches the row version read
// from the database and holds at least n; before is the SQN preceding the
// first one.
func (e *sqnEntry) take(read sqnVersion, n int) (before uint64, sqns []uint64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ver != read {
		e.left = 0 // stale: the row was written elsewhere
	}
	if e.left < n {
		return 0, nil, false
	}
	return e.takeLocked(n)
}

func (e *sqnEntry) takeLocked(n int) (before uint64, sqns []uint64, ok bool) {
	before = e.last
	sqns = make([]uint64, n)
	for i := range sqns {
		sqns[i] = e.next
		e.last, e.next = e.next, aka.NextSQN(e.next)
	}
	e.left -= n
	return before, sqns, true
}

// fill records a reservation of m SQNs after before that wrote row version
// ver, and hands out n of them (n ≤ m). The entry's remainder is used first
// when it directly precedes the new block (same row, the counter the
// reservation started from is the one the entry's reservation stored);
// otherwise it is dropped (skipped).
func (e *sqnEntry) fill(ver sqnVersion, before uint64, m, n int) (first uint64, sqns []uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.left > 0 && e.ver.id == ver.id && e.ver.sqn == before {
		e.left += m
	} else {
		e.last, e.next, e.left = before, aka.NextSQN(before), m
	}
	e.ver = ver
	first, sqns, _ = e.takeLocked(n)
	return first, sqns
}

// blockSize is the number of SQNs to reserve for a request of n.
func (c *sqnCache) blockSize(n int) int { return max(c.block, n) }

// pairReserveBlock is PairReserve with the block cache: a read-only
// pairAKASQL look-up when the IMPI's entry holds n SQNs for the counter
// it read, else the pipelined pair + reservation of a block.
func (s *Store) pairReserveBlock(ctx context.Context, impi, impu, scheme string, n int, scscfName, diameterHost string) (pi PairInfo, cr AKACredentials, sqns []uint64, reserved bool, err error) {
	e := s.sqn.entry(impi)
	// SQNs from memory or from a separate reservation: the pending
	// assignment is a statement of its own (a re-registration to the same
	// S-CSCF needs none).
	pending := func() error {
		if scscfName == "" || scscfName == pi.SCSCFName {
			return nil
		}
		_, err := s.SetPendingAssignment(ctx, impu, scscfName, diameterHost, impi)
		return err
	}
	if e.available() >= n {
		var stored int64
		var k, op, amf []byte
		var opType string
		var eligible bool
		read := sqnVersion{}
		err = s.groupedRow(ctx, impi, func(r pgx.Row) (err error) {
			pi, err = scanPair(r, &stored, &read.xmin, &k, &op, &opType, &amf, &eligible)
			return err
		}, pairAKASQL, impi, impu, scheme)
		if err != nil {
			return pi, cr, nil, false, wrap("PairReserve", err)
		}
		if !pi.Associated || !eligible {
			return pi, cr, nil, false, nil
		}
		read.id, read.sqn = pi.IMPI.ID, uint64(stored)
		if before, got, ok := e.take(read, n); ok {
			cr, err = credentialsOf(impi, before, k, op, opType, amf)
			if err != nil {
				return pi, cr, nil, false, wrap("PairReserve", err)
			}
			if err := pending(); err != nil {
				return pi, cr, nil, false, err
			}
			return pi, cr, got, true, nil
		}
		// The counter moved (another HSS, resync, administrator) or a
		// concurrent MAR used the SQNs: reserve a block (2nd round trip).
		cr, sqns, err = s.reserveBlock(ctx, e, impi, n)
		if errors.Is(err, ErrNoAKA) || errors.Is(err, ErrNotFound) {
			return pi, AKACredentials{}, nil, false, nil // changed meanwhile: the caller decides
		}
		if err != nil {
			return pi, cr, nil, false, err
		}
		if err := pending(); err != nil {
			return pi, cr, nil, false, err
		}
		return pi, cr, sqns, true, nil
	}
	m := s.sqn.blockSize(n)
	var ver sqnVersion
	pi, cr, sqns, reserved, ver, err = s.pairReserveDB(ctx, impi, impu, scheme, m, scscfName, diameterHost)
	if err != nil || !reserved {
		return pi, cr, nil, false, err
	}
	before, got := e.fill(ver, cr.SQN, m, n)
	cr.SQN = before
	return pi, cr, got, true, nil
}

// reserveBlock reserves a block for e (one durable statement) and hands
// out n SQNs.
func (s *Store) reserveBlock(ctx context.Context, e *sqnEntry, impi string, n int) (cr AKACredentials, sqns []uint64, err error) {
	m := s.sqn.blockSize(n)
	cr, _, ver, err := s.reserveDB(ctx, impi, m)
	if err != nil {
		return cr, nil, err
	}
	before, got := e.fill(ver, cr.SQN, m, n)
	cr.SQN = before
	return cr, got, nil
}

// reserveSQNsBlock is ReserveSQNs with the block cache: the IMPI's row is
// read (secrets, counter) and the entry used when it matches, else a block
// is reserved.
func (s *Store) reserveSQNsBlock(ctx context.Context, impi string, n int) (cr AKACredentials, sqns []uint64, err error) {
	e := s.sqn.entry(impi)
	if e.available() >= n {
		var read sqnVersion
		var stored int64
		var k, op, amf []byte
		var opType *string
		err = s.queryRow(ctx, `SELECT id, sqn, xmin::text::bigint, k, op, op_type, amf FROM impi WHERE identity = $1`, impi).
			Scan(&read.id, &stored, &read.xmin, &k, &op, &opType, &amf)
		if err != nil {
			return cr, nil, wrap("ReserveSQNs", err)
		}
		read.sqn = uint64(stored)
		if opType != nil {
			if before, got, ok := e.take(read, n); ok {
				cr, err = credentialsOf(impi, before, k, op, *opType, amf)
				if err != nil {
					return AKACredentials{}, nil, wrap("ReserveSQNs", err)
				}
				return cr, got, nil
			}
		}
	}
	return s.reserveBlock(ctx, e, impi, n)
}

// credentialsOf checks and copies the AKA secrets of one IMPI row.
func credentialsOf(impi string, sqn uint64, k, op []byte, opType string, amf []byte) (cr AKACredentials, err error) {
	if len(k) != 16 || len(op) != 16 || len(amf) != 2 || opType == "" {
		return cr, ErrNoAKA
	}
	cr = AKACredentials{IMPI: impi, OPIsOPc: opType == "opc", SQN: sqn}
	copy(cr.K[:], k)
	copy(cr.OP[:], op)
	copy(cr.AMF[:], amf)
	return cr, nil
}

// dropSQNBlock forgets impi's cached SQNs (no-op without blocks).
func (s *Store) dropSQNBlock(impi string) {
	if s.sqn != nil {
		s.sqn.drop(impi)
	}
}
