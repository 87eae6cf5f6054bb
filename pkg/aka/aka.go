// Package aka implements the authentication-vector side of IMS AKA for the
// HSS, the S-CSCF and test clients: OP→OPc, Milenage vector generation
// (TS 33.102 §6.3.2, TS 35.206), AUTN checking on the UE side (§6.3.3),
// AUTS generation and verification for SQN resynchronisation (§6.3.3,
// §6.3.5) and SQN arithmetic per TS 33.102 Annex C.
//
// The Milenage functions f1..f5, f1*, f5* come from
// github.com/wmnsk/milenage; this package adds length checks (bad input is
// an error, never a panic), the AUTN/AUTS framing and the HSS-side AUTS
// check the library lacks.
//
// All byte slices returned by this package are freshly allocated and owned
// by the caller. Inputs are never modified.
package aka

import (
	"errors"
	"fmt"

	"github.com/wmnsk/milenage"
)

// Byte lengths of the AKA parameters (TS 33.102 §6.3.7, TS 35.206 §2).
const (
	KLen    = 16                       // subscriber key K
	OPLen   = 16                       // operator variant OP, and OPc
	RANDLen = 16                       // random challenge RAND
	AMFLen  = 2                        // authentication management field AMF
	SQNLen  = 6                        // sequence number SQN (48 bits), on the wire
	AKLen   = 6                        // anonymity keys AK (f5) and AK* (f5*)
	MACLen  = 8                        // MAC-A (f1) and MAC-S (f1*)
	XRESLen = 8                        // XRES/RES (f2) as Milenage produces it
	CKLen   = 16                       // cipher key CK (f3)
	IKLen   = 16                       // integrity key IK (f4)
	AUTNLen = SQNLen + AMFLen + MACLen // (SQN ⊕ AK) ‖ AMF ‖ MAC-A = 16
	AUTSLen = SQNLen + MACLen          // (SQN_MS ⊕ AK*) ‖ MAC-S = 14
)

// Errors. Length problems wrap ErrInputLength; test with errors.Is.
var (
	// ErrInputLength: an input has the wrong number of bytes.
	ErrInputLength = errors.New("aka: wrong input length")
	// ErrSQNRange: an SQN does not fit in 48 bits.
	ErrSQNRange = errors.New("aka: SQN does not fit in 48 bits")
	// ErrMACAMismatch: MAC-A in AUTN does not match f1 (TS 33.102 §6.3.3,
	// the UE answers with an authentication failure, cause "MAC failure").
	ErrMACAMismatch = errors.New("aka: MAC-A mismatch (AUTN not authentic)")
	// ErrMACSMismatch: MAC-S in AUTS does not match f1* (TS 33.102 §6.3.5,
	// the HE must not resynchronise and sends no fresh vectors for it).
	ErrMACSMismatch = errors.New("aka: MAC-S mismatch (AUTS not authentic)")
	// ErrOPAmbiguous: Credentials has both or neither of OP and OPc.
	ErrOPAmbiguous = errors.New("aka: set exactly one of OP and OPc")
)

func checkLen(name string, b []byte, want int) error {
	if len(b) != want {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrInputLength, name, len(b), want)
	}
	return nil
}

// ComputeOPc derives OPc = OP ⊕ E_K(OP) (TS 35.206 §4.1). k and op must be
// 16 bytes each; otherwise the error wraps ErrInputLength. The result is 16
// bytes.
func ComputeOPc(k, op []byte) ([]byte, error) {
	if err := checkLen("K", k, KLen); err != nil {
		return nil, err
	}
	if err := checkLen("OP", op, OPLen); err != nil {
		return nil, err
	}
	opc, err := milenage.ComputeOPc(k, op)
	if err != nil {
		return nil, fmt.Errorf("aka: computing OPc: %w", err)
	}
	return opc, nil
}

// Credentials are a subscriber's AKA secrets as the HSS stores them for an
// IMPI: K (16 bytes), exactly one of OP or OPc (16 bytes each) and AMF
// (2 bytes, TS 33.102 §6.3.2; IMS deployments typically use 0x8000 or
// 0x0000).
type Credentials struct {
	K   []byte
	OP  []byte
	OPc []byte
	AMF []byte
}

// ResolveOPc returns OPc: a copy of c.OPc, or ComputeOPc(c.K, c.OP). It
// checks the lengths of K, OP/OPc and AMF, and returns ErrOPAmbiguous when
// both or neither of OP and OPc are set.
func (c Credentials) ResolveOPc() ([]byte, error) {
	if err := checkLen("K", c.K, KLen); err != nil {
		return nil, err
	}
	if err := checkLen("AMF", c.AMF, AMFLen); err != nil {
		return nil, err
	}
	switch {
	case c.OP != nil && c.OPc == nil:
		return ComputeOPc(c.K, c.OP)
	case c.OPc != nil && c.OP == nil:
		if err := checkLen("OPc", c.OPc, OPLen); err != nil {
			return nil, err
		}
		return clone(c.OPc), nil
	default:
		return nil, ErrOPAmbiguous
	}
}

func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

func xorInto(dst, a, b []byte) {
	for i := range dst {
		dst[i] = a[i] ^ b[i]
	}
}
