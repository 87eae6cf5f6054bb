package digest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

func h(parts ...string) string {
	sum := md5.Sum([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(sum[:])
}

// HA1 returns H(A1) = lower-hex MD5(username ":" realm ":" password)
// (RFC 2617 §3.2.2.2). password is used as raw bytes: for AKA pass
// string(AKAv1Password(res)) or string(AKAv2Password(res, ik, ck)); a RES
// with zero bytes is fine in a Go string.
func HA1(username, realm, password string) string {
	return h(username, realm, password)
}

// HA1Sess returns H(A1) for the "-sess" algorithms:
// MD5(HA1 ":" nonce ":" cnonce), with HA1 as 32 lower-hex digits (RFC 2617
// §3.2.2.2 text, RFC 7616 §3.4.2).
func HA1Sess(ha1, nonce, cnonce string) string {
	return h(ha1, nonce, cnonce)
}

// Response returns the request-digest (RFC 2617 §3.2.2.1) in lower hex for
// qop "" (RFC 2069 compatibility: MD5(HA1:nonce:HA2)) or "auth"
// (MD5(HA1:nonce:nc:cnonce:qop:HA2)), with HA2 = MD5(method:uri). For
// "auth-int" the body is taken as empty; use ResponseWithBody otherwise.
func Response(ha1, method, uri, nonce, nc, cnonce, qop string) string {
	return ResponseWithBody(ha1, method, uri, nonce, nc, cnonce, qop, nil)
}

// ResponseWithBody is Response with the message body used for qop=auth-int:
// HA2 = MD5(method:uri:MD5(body)) (RFC 2617 §3.2.2.3; RFC 3261 §22.4 uses
// the SIP message body).
func ResponseWithBody(ha1, method, uri, nonce, nc, cnonce, qop string, body []byte) string {
	ha2 := h(method, uri)
	if strings.EqualFold(qop, QOPAuthInt) {
		sum := md5.Sum(body)
		ha2 = h(method, uri, hex.EncodeToString(sum[:]))
	}
	if qop == "" {
		return h(ha1, nonce, ha2)
	}
	return h(ha1, nonce, nc, cnonce, qop, ha2)
}

// ErrUnsupported is wrapped by errors for an algorithm or qop this package
// cannot compute.
var ErrUnsupported = errors.New("digest: unsupported")

func isSess(alg string) (bool, error) {
	switch {
	case alg == "", strings.EqualFold(alg, AlgMD5), strings.EqualFold(alg, AlgAKAv1), strings.EqualFold(alg, AlgAKAv2):
		return false, nil
	case strings.EqualFold(alg, AlgMD5Sess), strings.EqualFold(alg, AlgAKAv1+"-sess"), strings.EqualFold(alg, AlgAKAv2+"-sess"):
		return true, nil
	}
	return false, fmt.Errorf("%w algorithm %q", ErrUnsupported, alg)
}

// ExpectedResponse computes the response the credentials should carry, from
// the HA1 of the user (HA1(username, realm, password)); method is the SIP
// method and body the message body (used only for qop=auth-int). It takes
// nonce, uri, nc, cnonce, qop and algorithm from the credentials. Missing nonce or uri, a qop without nc/cnonce, or an
// unknown algorithm or qop is an error.
func ExpectedResponse(cred *Header, method, ha1 string, body []byte) (string, error) {
	if !cred.Has("nonce") {
		return "", errors.New("digest: credentials lack nonce")
	}
	if !cred.Has("uri") {
		return "", errors.New("digest: credentials lack uri")
	}
	qop := cred.QOP()
	switch {
	case qop == "":
	case strings.EqualFold(qop, QOPAuth), strings.EqualFold(qop, QOPAuthInt):
		if cred.NC() == "" || cred.CNonce() == "" {
			return "", fmt.Errorf("digest: qop=%s without nc and cnonce", qop)
		}
	default:
		return "", fmt.Errorf("%w qop %q", ErrUnsupported, qop)
	}
	sess, err := isSess(cred.Algorithm())
	if err != nil {
		return "", err
	}
	if sess {
		if cred.CNonce() == "" {
			return "", errors.New("digest: -sess algorithm without cnonce")
		}
		ha1 = HA1Sess(ha1, cred.Nonce(), cred.CNonce())
	}
	return ResponseWithBody(ha1, method, cred.URI(), cred.Nonce(), cred.NC(), cred.CNonce(), qop, body), nil
}

// VerifyHA1 reports whether the credentials' response matches the one
// computed from ha1 (see ExpectedResponse), comparing in constant time.
// The caller still checks that username, realm, nonce and uri are the ones
// it expects (RFC 3261 §22.4, RFC 2617 §3.2.2.5). An error means the
// credentials cannot be checked, not that they are wrong.
func VerifyHA1(cred *Header, method, ha1 string, body []byte) (bool, error) {
	want, err := ExpectedResponse(cred, method, ha1, body)
	if err != nil {
		return false, err
	}
	if !cred.Has("response") {
		return false, errors.New("digest: credentials lack response")
	}
	got := strings.ToLower(cred.Response())
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, nil
}

// VerifyPassword is VerifyHA1 with HA1 computed from the credentials'
// username and realm and password (raw bytes: for IMS AKA the XRES-derived
// AKAv1Password or AKAv2Password, RFC 3310 §3.3, RFC 4169 §3).
func VerifyPassword(cred *Header, method string, password []byte, body []byte) (bool, error) {
	return VerifyHA1(cred, method, HA1(cred.Username(), cred.Realm(), string(password)), body)
}

// AKAv1Password returns the digest password for AKAv1-MD5: RES (or XRES)
// itself as raw bytes, any length, zero bytes included (RFC 3310 §3.3).
func AKAv1Password(res []byte) []byte {
	return append([]byte(nil), res...)
}

// AKAv2Password returns the digest password for AKAv2-MD5 (RFC 4169 §3):
// base64(PRF(RES‖IK‖CK, "http-digest-akav2-password")) where PRF is
// HMAC-MD5 keyed with the concatenation RES‖IK‖CK over the ASCII string
// "http-digest-akav2-password" (our reading of RFC 4169 §3, which is also
// what deployed UEs and proxies compute). The result is the 24-character
// standard base64 (with padding) of the 16-byte MAC.
func AKAv2Password(res, ik, ck []byte) []byte {
	key := make([]byte, 0, len(res)+len(ik)+len(ck))
	key = append(append(append(key, res...), ik...), ck...)
	mac := hmac.New(md5.New, key)
	mac.Write([]byte("http-digest-akav2-password"))
	sum := mac.Sum(nil)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum)
	return out
}
