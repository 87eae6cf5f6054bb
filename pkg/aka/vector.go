package aka

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/wmnsk/milenage"
)

// Vector is one authentication vector (quintet) as the HSS returns it in
// an MAA (TS 33.102 §6.3.2, TS 29.229 §6.3.13 SIP-Auth-Data-Item).
//
//	RAND 16 bytes   random challenge
//	AUTN 16 bytes   (SQN ⊕ AK) ‖ AMF ‖ MAC-A
//	XRES  8 bytes   f2, the expected response
//	CK   16 bytes   f3
//	IK   16 bytes   f4
//	AK    6 bytes   f5, the anonymity key that conceals SQN in AUTN
//	SQN  48-bit sequence number carried (concealed) in AUTN
type Vector struct {
	RAND, AUTN, XRES, CK, IK, AK []byte
	SQN                          uint64
}

// SIPAuthenticate returns RAND ‖ AUTN (32 bytes), the content of the
// SIP-Authenticate AVP (TS 29.229 §6.3.10) and, base64-encoded, of the
// digest nonce (TS 33.203 §6.1).
func (v Vector) SIPAuthenticate() []byte {
	out := make([]byte, 0, len(v.RAND)+len(v.AUTN))
	out = append(out, v.RAND...)
	return append(out, v.AUTN...)
}

// String shows RAND and SQN only, so that logging a Vector never prints
// XRES, CK, IK or AK.
func (v Vector) String() string {
	return fmt.Sprintf("aka.Vector{RAND:%x SQN:%#012x}", v.RAND, v.SQN)
}

// Generator makes authentication vectors. Its zero value is ready to use
// and draws RAND from crypto/rand. A Generator holds no state besides Rand
// and is safe for concurrent use when Rand is (crypto/rand.Reader is).
type Generator struct {
	// Rand is the source of RAND when the caller passes none; nil means
	// crypto/rand.Reader. Tests inject a deterministic reader here.
	Rand io.Reader
}

// Generate computes a vector for the credentials c (K, OP or OPc, AMF; see
// Credentials) and the sequence number sqn (48 bits, else ErrSQNRange).
// randIn is RAND (16 bytes) or nil to draw a fresh one from g.Rand.
// Per TS 33.102 §6.3.2: MAC-A = f1(K, SQN, RAND, AMF), XRES = f2, CK = f3,
// IK = f4, AK = f5 (all keyed with K and OPc, TS 35.206 §4.1) and
// AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
//
// The caller picks sqn (see NextSQN) and must persist it before handing
// the vector out.
func (g Generator) Generate(c Credentials, sqn uint64, randIn []byte) (Vector, error) {
	opc, err := c.ResolveOPc()
	if err != nil {
		return Vector{}, err
	}
	if sqn > SQNMax {
		return Vector{}, fmt.Errorf("%w: %#x", ErrSQNRange, sqn)
	}
	var r []byte
	if randIn == nil {
		src := g.Rand
		if src == nil {
			src = rand.Reader
		}
		r = make([]byte, RANDLen)
		if _, err := io.ReadFull(src, r); err != nil {
			return Vector{}, fmt.Errorf("aka: reading RAND: %w", err)
		}
	} else {
		if err := checkLen("RAND", randIn, RANDLen); err != nil {
			return Vector{}, err
		}
		r = clone(randIn)
	}

	m := milenage.NewWithOPc(clone(c.K), opc, r, sqn, binary.BigEndian.Uint16(c.AMF))
	macA, err := m.F1()
	if err != nil {
		return Vector{}, fmt.Errorf("aka: f1: %w", err)
	}
	res, ck, ik, ak, err := m.F2345()
	if err != nil {
		return Vector{}, fmt.Errorf("aka: f2-f5: %w", err)
	}

	autn := make([]byte, AUTNLen)
	xorInto(autn[:SQNLen], sqnBytes(sqn), ak)
	copy(autn[SQNLen:SQNLen+AMFLen], c.AMF)
	copy(autn[SQNLen+AMFLen:], macA)

	return Vector{
		RAND: r,
		AUTN: autn,
		XRES: clone(res),
		CK:   clone(ck),
		IK:   clone(ik),
		AK:   clone(ak),
		SQN:  sqn,
	}, nil
}

// GenerateVector is Generator{}.Generate: RAND from crypto/rand when
// randIn is nil.
func GenerateVector(c Credentials, sqn uint64, randIn []byte) (Vector, error) {
	return Generator{}.Generate(c, sqn, randIn)
}

// SplitSIPAuthenticate splits RAND ‖ AUTN (32 bytes: a SIP-Authenticate AVP
// or a decoded AKA nonce) into RAND (16) and AUTN (16), copied.
func SplitSIPAuthenticate(b []byte) (randOut, autn []byte, err error) {
	if err := checkLen("RAND‖AUTN", b, RANDLen+AUTNLen); err != nil {
		return nil, nil, err
	}
	return clone(b[:RANDLen]), clone(b[RANDLen:]), nil
}

// SplitSIPAuthorization splits RAND ‖ AUTS (30 bytes), the SIP-Authorization
// AVP of a resynchronisation MAR (TS 29.229 §6.3.11), into RAND (16) and
// AUTS (14), copied.
func SplitSIPAuthorization(b []byte) (randOut, auts []byte, err error) {
	if err := checkLen("RAND‖AUTS", b, RANDLen+AUTSLen); err != nil {
		return nil, nil, err
	}
	return clone(b[:RANDLen]), clone(b[RANDLen:]), nil
}

// sqnBytes encodes a 48-bit SQN as 6 big-endian bytes.
func sqnBytes(sqn uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], sqn)
	return clone(b[2:])
}

// sqnFromBytes decodes 6 big-endian bytes.
func sqnFromBytes(b []byte) uint64 {
	var w [8]byte
	copy(w[2:], b[:SQNLen])
	return binary.BigEndian.Uint64(w[:])
}
