package aka

import (
	"crypto/subtle"
	"fmt"

	"github.com/wmnsk/milenage"
)

// amfStarZero is AMF*, the dummy AMF of all zeros used for MAC-S
// (TS 33.102 §6.3.3: "the AMF used to calculate MAC-S assumes a dummy value
// of all zeros so that it does not need to be transmitted in the clear in
// the re-synch message").
var amfStarZero = []byte{0, 0}

// GenerateAUTS is the UE side of a synchronisation failure (TS 33.102
// §6.3.3): AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S with AK* = f5*(K, RAND) and
// MAC-S = f1*(K, SQN_MS, RAND, AMF* = 0x0000). k, opc and rand are 16
// bytes each; sqnMS must fit in 48 bits. The result is 14 bytes.
//
// It uses milenage.(*Milenage).GenerateAUTS, which applies AMF* = 0x0000;
// the package tests check it against VerifyAUTS.
func GenerateAUTS(k, opc, rand []byte, sqnMS uint64) ([]byte, error) {
	if err := checkKeys(k, opc, rand); err != nil {
		return nil, err
	}
	if sqnMS > SQNMax {
		return nil, fmt.Errorf("%w: SQN_MS %#x", ErrSQNRange, sqnMS)
	}
	m := milenage.NewWithOPc(clone(k), clone(opc), clone(rand), sqnMS, 0)
	auts, err := m.GenerateAUTS()
	if err != nil {
		return nil, fmt.Errorf("aka: generating AUTS: %w", err)
	}
	return auts, nil
}

// VerifyAUTS is the HSS side of resynchronisation (TS 33.102 §6.3.5): it
// unmasks SQN_MS = AUTS[0:6] ⊕ f5*(K, RAND) and checks
// AUTS[6:14] = MAC-S = f1*(K, SQN_MS, RAND, AMF* = 0x0000).
//
// k, opc and rand (the RAND of the challenged vector, first 16 bytes of the
// SIP-Authorization AVP) are 16 bytes each and auts 14 bytes; otherwise the
// error wraps ErrInputLength. A wrong MAC-S returns ErrMACSMismatch and
// sqnMS 0: the HSS must then keep its SQN. On success the HSS continues
// from SQNFromResync(sqnMS).
func VerifyAUTS(k, opc, rand, auts []byte) (sqnMS uint64, err error) {
	return verifyAUTS(k, opc, rand, auts, amfStarZero)
}

// verifyAUTS is VerifyAUTS with a chosen AMF*, so that tests can feed the
// TS 35.208 f1* outputs (computed with the test sets' AMF) through it.
func verifyAUTS(k, opc, rand, auts, amfStar []byte) (uint64, error) {
	if err := checkKeys(k, opc, rand); err != nil {
		return 0, err
	}
	if err := checkLen("AUTS", auts, AUTSLen); err != nil {
		return 0, err
	}
	m := milenage.NewWithOPc(clone(k), clone(opc), clone(rand), 0, 0)
	akStar, err := m.F5Star()
	if err != nil {
		return 0, fmt.Errorf("aka: f5*: %w", err)
	}
	sqn := make([]byte, SQNLen)
	xorInto(sqn, auts[:SQNLen], akStar)
	macS, err := m.F1Star(sqn, amfStar)
	if err != nil {
		return 0, fmt.Errorf("aka: f1*: %w", err)
	}
	if subtle.ConstantTimeCompare(macS, auts[SQNLen:]) != 1 {
		return 0, ErrMACSMismatch
	}
	return sqnFromBytes(sqn), nil
}

func checkKeys(k, opc, rand []byte) error {
	if err := checkLen("K", k, KLen); err != nil {
		return err
	}
	if err := checkLen("OPc", opc, OPLen); err != nil {
		return err
	}
	return checkLen("RAND", rand, RANDLen)
}
