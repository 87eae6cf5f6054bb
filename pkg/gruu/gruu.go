// Package gruu builds and reads the GRUUs the S-CSCF assigns (RFC 5627,
// TS 24.229 §5.4.7A): public GRUUs (the IMPU with a "gr" parameter
// holding the instance URN) and temporary GRUUs, which carry the IMPU,
// the instance and the registration they were issued in sealed with
// AES-256-GCM under a secret shared by the S-CSCFs and the I-CSCFs of the
// network, so that:
//   - they reveal neither the IMPU nor the instance (RFC 5627 §3.2);
//   - no state is kept per GRUU: any S-CSCF (also after a restart) and
//     any I-CSCF holding the secret resolves one, the I-CSCF to the IMPU
//     it runs the LIR on (TS 29.228 §6.1.5);
//   - every temporary GRUU of one registration stays valid while the
//     binding of its instance exists and keeps the Call-ID it was issued
//     for (RFC 5627 §3.2, §5.3: a new Call-ID, or the end of the
//     registration, invalidates the older ones).
//
// A temporary GRUU is "sip:" TempPrefix "<token>@<domain of the
// IMPU>;gr", token the base64url (no padding) of nonce || ciphertext.
package gruu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TempPrefix starts the user part of every temporary GRUU this package
// builds; the I-CSCF and the S-CSCF recognise the form by it and by a
// valueless "gr" URI parameter.
const TempPrefix = "tgruu."

// MinSecretLen is the shortest secret NewCodec accepts, in bytes.
const MinSecretLen = 16

// tokenVersion is the first byte of every sealed token.
const tokenVersion = 1

// Errors of Codec.Parse.
var (
	// ErrNotTemp: the URI is not of the temporary GRUU form.
	ErrNotTemp = errors.New("gruu: not a temporary GRUU")
	// ErrInvalid: the URI has the form but was not sealed with this
	// secret (forged, corrupted, or from another network).
	ErrInvalid = errors.New("gruu: temporary GRUU not issued here")
)

// Public is the public GRUU of instance (a +sip.instance value, with or
// without its angle brackets) for aor, a SIP URI without parameters (RFC
// 5627 §3.1: the AOR with a "gr" parameter holding the instance URN).
func Public(aor, instance string) string {
	return aor + ";gr=" + strings.Trim(instance, "<>")
}

// Temp is what a temporary GRUU resolves to.
type Temp struct {
	// IMPU is the public user identity it was issued for (canonical SIP
	// or tel URI, no parameters).
	IMPU string
	// Instance is the +sip.instance URN, without angle brackets.
	Instance string
	// CallIDHash identifies the Call-ID of the REGISTER it was issued in
	// (the first 8 bytes of its SHA-256); see SameCallID.
	CallIDHash [8]byte
	// CSeq is the CSeq of that REGISTER (the temp GRUUs of one Call-ID
	// differ by it, RFC 5627 §5.3).
	CSeq uint32
	// Registered is when the binding was created, in Unix seconds: a
	// binding removed and registered again is a new registration.
	Registered int64
}

// Of reports whether t was issued for the binding registered at
// registered whose REGISTERs carry callID (RFC 5627 §3.2: a temporary
// GRUU is valid until the instance's registration ends or its Call-ID
// changes).
func (t Temp) Of(callID string, registered time.Time) bool {
	h := callIDHash(callID)
	return hmac.Equal(h[:], t.CallIDHash[:]) && registered.Unix() == t.Registered
}

func callIDHash(callID string) [8]byte {
	s := sha256.Sum256([]byte(callID))
	var h [8]byte
	copy(h[:], s[:8])
	return h
}

// Codec seals and opens temporary GRUUs with one secret. It is safe for
// concurrent use.
type Codec struct {
	aead   cipher.AEAD
	macKey []byte
}

// NewCodec returns the codec of secret (at least MinSecretLen bytes;
// every S-CSCF and I-CSCF of the network must hold the same one). The
// AES-256 key and the nonce key are derived from it with HMAC-SHA-256.
func NewCodec(secret []byte) (*Codec, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("gruu: secret of %d bytes, need at least %d", len(secret), MinSecretLen)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("imscore temp-gruu v1 " + label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("aes"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Codec{aead: aead, macKey: derive("nonce")}, nil
}

// TempURI returns the temporary GRUU of instance for impu issued in the
// REGISTER with callID and cseq to the binding created at registered.
// The same arguments give the same URI
// (the nonce is an HMAC of the plaintext, so a reg-event NOTIFY repeats
// the GRUU of the 200); any other CSeq or Call-ID gives another one.
// The host is impu's, so that the GRUU routes to the home network.
func (c *Codec) TempURI(impu, instance, callID string, cseq uint32, registered time.Time) string {
	instance = strings.Trim(instance, "<>")
	var pt []byte
	pt = append(pt, tokenVersion)
	pt = binary.AppendUvarint(pt, uint64(len(impu)))
	pt = append(pt, impu...)
	pt = binary.AppendUvarint(pt, uint64(len(instance)))
	pt = append(pt, instance...)
	h := callIDHash(callID)
	pt = append(pt, h[:]...)
	pt = binary.BigEndian.AppendUint32(pt, cseq)
	pt = binary.BigEndian.AppendUint64(pt, uint64(registered.Unix()))
	m := hmac.New(sha256.New, c.macKey)
	m.Write(pt)
	nonce := m.Sum(nil)[:c.aead.NonceSize()]
	tok := c.aead.Seal(append([]byte(nil), nonce...), nonce, pt, nil)
	return "sip:" + TempPrefix + base64.RawURLEncoding.EncodeToString(tok) + "@" + hostOf(impu) + ";gr"
}

// hostOf is the host of a sip:/sips: URI, the domain of a tel URI's
// phone-context, "" otherwise.
func hostOf(impu string) string {
	var u sip.Uri
	if err := sip.ParseUri(impu, &u); err == nil && u.Host != "" {
		return u.Host
	}
	if i := strings.Index(impu, "phone-context="); i >= 0 {
		return strings.TrimPrefix(strings.SplitN(impu[i+len("phone-context="):], ";", 2)[0], "+")
	}
	return ""
}

// IsTemp reports whether u has the form of a temporary GRUU: user part
// starting with TempPrefix and a "gr" parameter without value.
func IsTemp(u sip.Uri) bool {
	if !strings.HasPrefix(u.User, TempPrefix) || u.UriParams == nil {
		return false
	}
	v, ok := u.UriParams.Get("gr")
	return ok && v == ""
}

// Parse opens the temporary GRUU u: ErrNotTemp when u has not the form
// (IsTemp), ErrInvalid when it was not sealed with this codec's secret.
func (c *Codec) Parse(u sip.Uri) (Temp, error) {
	if !IsTemp(u) {
		return Temp{}, ErrNotTemp
	}
	tok, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(u.User, TempPrefix))
	ns := c.aead.NonceSize()
	if err != nil || len(tok) < ns+c.aead.Overhead()+1 {
		return Temp{}, ErrInvalid
	}
	pt, err := c.aead.Open(nil, tok[:ns], tok[ns:], nil)
	if err != nil || len(pt) == 0 || pt[0] != tokenVersion {
		return Temp{}, ErrInvalid
	}
	r := bytes.NewReader(pt[1:])
	str := func() (string, bool) {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return "", false
		}
		b := make([]byte, n)
		_, _ = r.Read(b)
		return string(b), true
	}
	var t Temp
	var ok1, ok2 bool
	t.IMPU, ok1 = str()
	t.Instance, ok2 = str()
	if !ok1 || !ok2 || r.Len() != 20 {
		return Temp{}, ErrInvalid
	}
	_, _ = r.Read(t.CallIDHash[:])
	var cs [4]byte
	_, _ = r.Read(cs[:])
	t.CSeq = binary.BigEndian.Uint32(cs[:])
	var reg [8]byte
	_, _ = r.Read(reg[:])
	t.Registered = int64(binary.BigEndian.Uint64(reg[:]))
	return t, nil
}
