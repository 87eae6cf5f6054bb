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
	"github.com/imscore/imscore/scscf/binding"
)

// gruuAOROf returns the AOR (the To IMPU) for the GRUUs of the 200 to
// REGISTER req, "" when req does not list "gruu" in Supported (RFC 5627
// §5.2: no GRUU is given to a UE that did not ask) or To is not a SIP
// URI (GRUUs are SIP URIs, RFC 5627 §3.1).
func gruuAOROf(req *sip.Request) string {
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
	return (&sip.Uri{Scheme: u.Scheme, User: u.User, Host: u.Host}).String()
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
