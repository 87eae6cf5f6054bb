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

// ResyncSQN records SQN_MS recovered from AUTS (TS 33.102 §6.3.5; MAR with
// SIP-Authorization, TS 29.228 §6.3) as the last SQN used, so that the
// next ReserveSQNs starts at aka.NextSQN(sqnMS) and the UE accepts it.
// sqnMS must be below 2^48. ErrNotFound for an unknown IMPI. The IMPI's
// cached SQN block (EnableSQNBlocks) is dropped, whatever the outcome.
func (s *Store) ResyncSQN(ctx context.Context, impi string, sqnMS uint64) error {
	if sqnMS > aka.SQNMax {
		return fmt.Errorf("hss/store: ResyncSQN: SQN %#x has more than 48 bits", sqnMS)
	}
	defer s.dropSQNBlock(impi)
	return s.conn(ctx, "ResyncSQN", func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE impi SET sqn = $2 WHERE identity = $1`, impi, int64(sqnMS))
		if err == nil && tag.RowsAffected() == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
}
