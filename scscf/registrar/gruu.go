package registrar

// GRUUs in the 200 to REGISTER (RFC 5627 §5.2-5.3, TS 24.229 §5.4.7A.2):
// a UE that supports GRUU and registers a Contact with +sip.instance
// learns, in the 200, a public GRUU and a temporary GRUU (the S-CSCF
// issues them in pairs, TS 24.229 §5.4.7A.1) that reach that instance
// only (session routing, scscf/isc, filters the bindings by them).

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// gruuAOROf returns the AOR for the GRUUs of the 200 to REGISTER req
// that registered snap (profile: its user profile, nil if unknown): the
// To IMPU; "" when req does not list "gruu" in Supported (RFC 5627 §5.2:
// no GRUU is given to a UE that did not ask) or To is not a SIP URI
// (GRUUs are SIP URIs, RFC 5627 §3.1).
//
// A barred To IMPU (a USIM-only UE registering with its temporary IMPU,
// TS 23.003 §13.4B) is not reachable (TS 24.229 §5.4.3.3: a request to it
// gets 404), nor reported in the reg event (§5.4.2.1.2), so a GRUU built
// on it would be useless: the GRUUs are built on the default public user
// identity instead, the first non-barred SIP IMPU of the set in the
// HSS's order (the first entry of P-Associated-URI, which the UE then
// uses, TS 24.229 §5.1.1.2.1); "" when the set has none.
func gruuAOROf(req *sip.Request, snap binding.Registration, profile *userdata.IMSSubscription) string {
	supported := false
	for _, v := range imsheader.Values(req, "Supported") {
		for _, tag := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tag), "gruu") {
				supported = true
			}
		}
	}
	if !supported || req.To() == nil {
		return ""
	}
	u := req.To().Address
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return ""
	}
	aor := (&sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host}).String()
	barred := map[string]bool{}
	for _, b := range snap.Barred {
		barred[binding.CanonURI(b)] = true
	}
	if !barred[binding.CanonURI(aor)] {
		return aor
	}
	for _, impu := range binding.HSSOrder(profile, snap.IMPUs) {
		k := binding.CanonURI(impu)
		if !barred[k] && (strings.HasPrefix(k, "sip:") || strings.HasPrefix(k, "sips:")) {
			return k
		}
	}
	return ""
}

// PublicGRUU is the public GRUU of instance (a +sip.instance value, with
// or without its angle brackets) for aor (RFC 5627 §3.1: the AOR with a
// "gr" parameter holding the instance URN).
func PublicGRUU(aor, instance string) string { return gruu.Public(aor, instance) }

// gruuParams are the ";pub-gruu=...;temp-gruu=..." Contact parameters of
// binding c in a 200 whose GRUU AOR is aor ("" none): only for an
// unexpired binding with +sip.instance (RFC 5627 §5.3). temp-gruu is a
// new temporary GRUU for this REGISTER (its CSeq), sealed with
// Config.GRUU; without a codec only pub-gruu is given.
func (s *Registrar) gruuParams(aor string, c binding.Contact, left int) string {
	if aor == "" || c.Instance == "" || left <= 0 {
		return ""
	}
	p := ";pub-gruu=" + imsheader.Quote(gruu.Public(aor, c.Instance))
	if s.cfg.GRUU != nil {
		p += ";temp-gruu=" + imsheader.Quote(s.cfg.GRUU.TempURI(aor, c.Instance, c.CallID, c.CSeq, c.Registered))
	}
	return p
}
