package store

import (
	"context"
	"fmt"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/jackc/pgx/v5"
)

// AKACredentials are the AKA secrets of one IMPI (TS 33.102 §6.3.2,
// TS 35.206): K, OP or OPc (OPIsOPc tells which), AMF.
type AKACredentials struct {
	IMPI    string
	K       [16]byte
	OP      [16]byte // OP, or OPc when OPIsOPc
	OPIsOPc bool
	AMF     [2]byte
	// SQN stored before this reservation (the last SQN handed out).
	SQN uint64
}

// ReserveSQNs hands out n fresh sequence numbers for MAR
// (TS 29.228 §6.3, SIP-Number-Auth-Items; TS 33.102 §6.3.2 and Annex C):
// in one transaction it locks the IMPI row (SELECT ... FOR UPDATE), takes
// n successive SQNs with aka.NextSQN (SEQ + 1 each, IND = 0, i.e. +32,
// below 2^48), stores the last one and commits. Concurrent callers never
// receive the same SQN. n must be 1..64. ErrNotFound for an unknown IMPI,
// ErrNoAKA when it has no K/OP.
func (s *Store) ReserveSQNs(ctx context.Context, impi string, n int) (cr AKACredentials, sqns []uint64, err error) {
	if n < 1 || n > 64 {
		return cr, nil, fmt.Errorf("hss/store: ReserveSQNs: n = %d, want 1..64", n)
	}
	err = s.tx(ctx, "ReserveSQNs", func(tx pgx.Tx) error {
		var id int64
		var k, op, amf []byte
		var opType *string
		var sqn int64
		if err := tx.QueryRow(ctx, `SELECT id, k, op, op_type, amf, sqn FROM impi WHERE identity = $1 FOR UPDATE`,
			impi).Scan(&id, &k, &op, &opType, &amf, &sqn); err != nil {
			return err
		}
		if len(k) != 16 || len(op) != 16 || len(amf) != 2 || opType == nil {
			return ErrNoAKA
		}
		cr = AKACredentials{IMPI: impi, OPIsOPc: *opType == "opc", SQN: uint64(sqn)}
		copy(cr.K[:], k)
		copy(cr.OP[:], op)
		copy(cr.AMF[:], amf)
		cur := uint64(sqn)
		sqns = make([]uint64, n)
		for i := range sqns {
			cur = aka.NextSQN(cur)
			sqns[i] = cur
		}
		_, err := tx.Exec(ctx, `UPDATE impi SET sqn = $2 WHERE id = $1`, id, int64(cur))
		return err
	})
	if err != nil {
		return AKACredentials{}, nil, err
	}
	return cr, sqns, nil
}

// ResyncSQN records SQN_MS recovered from AUTS (TS 33.102 §6.3.5; MAR with
// SIP-Authorization, TS 29.228 §6.3) as the last SQN used, so that the
// next ReserveSQNs starts at aka.NextSQN(sqnMS) and the UE accepts it.
// sqnMS must be below 2^48. ErrNotFound for an unknown IMPI.
func (s *Store) ResyncSQN(ctx context.Context, impi string, sqnMS uint64) error {
	if sqnMS > aka.SQNMax {
		return fmt.Errorf("hss/store: ResyncSQN: SQN %#x has more than 48 bits", sqnMS)
	}
	return s.conn(ctx, "ResyncSQN", func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE impi SET sqn = $2 WHERE identity = $1`, impi, int64(sqnMS))
		if err == nil && tag.RowsAffected() == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
}
