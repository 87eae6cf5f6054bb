package aka

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/wmnsk/milenage"
)

// ErrSQNNotFresh: AUTN was authentic but its SQN is not in the accepted
// range (TS 33.102 §6.3.3); the UE answers with AUTS (synchronisation
// failure).
var ErrSQNNotFresh = errors.New("aka: SQN not fresh (synchronisation failure)")

// CheckAUTN is the USIM computation of TS 33.102 §6.3.3 without the SQN
// freshness check: it computes AK = f5(K, RAND), unmasks
// SQN = AUTN[0:6] ⊕ AK, reads AMF = AUTN[6:8] and checks
// AUTN[8:16] = MAC-A = f1(K, SQN, RAND, AMF). k, opc, rand and autn are 16
// bytes each (else an error wrapping ErrInputLength). A wrong MAC-A returns
// ErrMACAMismatch and nothing else. On success it returns RES (8 bytes,
// f2), CK (16, f3), IK (16, f4) and the SQN carried in AUTN.
//
// The AMF separation bit of EPS (TS 33.401) is not examined.
func CheckAUTN(k, opc, rand, autn []byte) (res, ck, ik []byte, sqn uint64, err error) {
	if err := checkKeys(k, opc, rand); err != nil {
		return nil, nil, nil, 0, err
	}
	if err := checkLen("AUTN", autn, AUTNLen); err != nil {
		return nil, nil, nil, 0, err
	}
	m := milenage.NewWithOPc(clone(k), clone(opc), clone(rand), 0, 0)
	r, c, i, ak, err := m.F2345()
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("aka: f2-f5: %w", err)
	}
	sqnB := make([]byte, SQNLen)
	xorInto(sqnB, autn[:SQNLen], ak)
	m.SQN = sqnB
	m.AMF = clone(autn[SQNLen : SQNLen+AMFLen])
	macA, err := m.F1()
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("aka: f1: %w", err)
	}
	if subtle.ConstantTimeCompare(macA, autn[SQNLen+AMFLen:]) != 1 {
		return nil, nil, nil, 0, ErrMACAMismatch
	}
	return clone(r), clone(c), clone(i), sqnFromBytes(sqnB), nil
}

// UE plays the USIM for tests and simple clients: it keeps SQN_MS, the
// highest SQN it has accepted, and answers challenges per TS 33.102 §6.3.3.
//
// Freshness is simplified: a SQN is accepted when it is greater than SQN_MS
// (and, when MaxDelta > 0, at most SQN_MS + MaxDelta); the per-IND array of
// Annex C is not modelled. UE is safe for concurrent use.
type UE struct {
	K   []byte // 16 bytes
	OPc []byte // 16 bytes
	// MaxDelta, when > 0, bounds how far ahead of SQN_MS an accepted SQN
	// may be (the Δ of TS 33.102 Annex C).
	MaxDelta uint64

	mu    sync.Mutex
	sqnMS uint64
}

// NewUE returns a UE for k and opc (16 bytes each) whose SQN_MS is sqnMS.
func NewUE(k, opc []byte, sqnMS uint64) (*UE, error) {
	if err := checkLen("K", k, KLen); err != nil {
		return nil, err
	}
	if err := checkLen("OPc", opc, OPLen); err != nil {
		return nil, err
	}
	if sqnMS > SQNMax {
		return nil, fmt.Errorf("%w: SQN_MS %#x", ErrSQNRange, sqnMS)
	}
	return &UE{K: clone(k), OPc: clone(opc), sqnMS: sqnMS}, nil
}

// SQNMS returns the highest SQN the UE has accepted.
func (u *UE) SQNMS() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sqnMS
}

// Authenticate answers a challenge RAND (16 bytes) / AUTN (16 bytes):
//   - MAC-A wrong: ErrMACAMismatch (the UE would send "MAC failure");
//   - SQN not fresh: auts (14 bytes, from SQN_MS; see GenerateAUTS) and an
//     error wrapping ErrSQNNotFresh; SQN_MS is unchanged;
//   - otherwise RES (8 bytes), CK and IK (16 bytes each) and SQN_MS
//     becomes the SQN of AUTN.
func (u *UE) Authenticate(rand, autn []byte) (res, ck, ik, auts []byte, err error) {
	res, ck, ik, sqn, err := CheckAUTN(u.K, u.OPc, rand, autn)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	fresh := sqn > u.sqnMS && (u.MaxDelta == 0 || sqn-u.sqnMS <= u.MaxDelta)
	if !fresh {
		auts, aerr := GenerateAUTS(u.K, u.OPc, rand, u.sqnMS)
		if aerr != nil {
			return nil, nil, nil, nil, aerr
		}
		return nil, nil, nil, auts, fmt.Errorf("%w: SQN %#x, SQN_MS %#x", ErrSQNNotFresh, sqn, u.sqnMS)
	}
	u.sqnMS = sqn
	return res, ck, ik, nil, nil
}
