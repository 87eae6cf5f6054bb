package digest

import (
	"errors"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
)

// Header names (RFC 3261 §20).
const (
	HeaderAuthorization      = "Authorization"
	HeaderProxyAuthorization = "Proxy-Authorization"
	HeaderWWWAuthenticate    = "WWW-Authenticate"
	HeaderProxyAuthenticate  = "Proxy-Authenticate"
	HeaderAuthenticationInfo = "Authentication-Info"
)

// GetAll parses every header called name (Authorization, WWW-Authenticate,
// ...) of msg in order. Headers with another scheme are skipped; a
// malformed Digest header is an error. nil, nil when there is none.
func GetAll(msg sip.Message, name string) ([]*Header, error) {
	var out []*Header
	for _, v := range imsheader.Values(msg, name) {
		h, err := Parse(v)
		if err != nil {
			if isNotDigest(err) {
				continue
			}
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func isNotDigest(err error) bool { return errors.Is(err, ErrNotDigest) }

// GetAuthorization returns the Digest Authorization for realm (any realm
// when realm is ""), or nil, nil when there is none (RFC 3261 §22.4).
func GetAuthorization(msg sip.Message, realm string) (*Header, error) {
	return getForRealm(msg, HeaderAuthorization, realm)
}

// GetProxyAuthorization is GetAuthorization for Proxy-Authorization.
func GetProxyAuthorization(msg sip.Message, realm string) (*Header, error) {
	return getForRealm(msg, HeaderProxyAuthorization, realm)
}

// GetWWWAuthenticate returns the first Digest WWW-Authenticate challenge,
// nil, nil when there is none.
func GetWWWAuthenticate(msg sip.Message) (*Header, error) {
	return getForRealm(msg, HeaderWWWAuthenticate, "")
}

// GetProxyAuthenticate returns the first Digest Proxy-Authenticate
// challenge, nil, nil when there is none.
func GetProxyAuthenticate(msg sip.Message) (*Header, error) {
	return getForRealm(msg, HeaderProxyAuthenticate, "")
}

func getForRealm(msg sip.Message, name, realm string) (*Header, error) {
	all, err := GetAll(msg, name)
	if err != nil {
		return nil, err
	}
	for _, h := range all {
		if realm == "" || h.Realm() == realm {
			return h, nil
		}
	}
	return nil, nil
}

// Set replaces every header called name by hs, one header each, placed where
// the first one was (appended when none). With no hs it removes them. A
// P-CSCF uses it to rewrite Authorization (integrity-protected) and the 401's
// WWW-Authenticate (ik/ck removed), TS 24.229 §5.2.2.1.
func Set(msg imsheader.Editable, name string, hs ...*Header) {
	if len(hs) == 0 {
		imsheader.RemoveHeaders(msg, name)
		return
	}
	imsheader.SetHeader(msg, name, hs[0].String())
	idx := -1
	for i, h := range msg.Headers() {
		if strings.EqualFold(h.Name(), name) {
			idx = i
			break
		}
	}
	for i, h := range hs[1:] {
		msg.AppendHeader(sip.NewHeader(name, h.String()))
		// Move it right after the previous one.
		all := msg.Headers()
		last := all[len(all)-1]
		pos := idx + 1 + i
		copy(all[pos+1:], all[pos:len(all)-1])
		all[pos] = last
	}
}
