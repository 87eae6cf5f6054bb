package regevent

// GRUUs in the reg event (RFC 5628, TS 24.229 §5.4.2.1.2): the S-CSCF
// reports, in every registration element, the GRUUs of that element's
// IMPU for each contact registered with +sip.instance: the public GRUU
// and the temporary GRUU of the last REGISTER with first-cseq (TS 24.229
// §5.4.7A.1: always in pairs). Both are per IMPU (RFC 5627 §3.1), so the
// implicitly registered IMPUs of a set each get their own (TS 23.228
// §5.20.1.1: the UE learns them from the reg event).

import (
	"strings"

	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/scscf/binding"
)

// withGRUUs returns the contacts cs of the registration element of impu
// with gr:pub-gruu (and gr:temp-gruu when Config.GRUU is set) on each
// active contact that has a +sip.instance parameter; bs are the bindings
// cs were built from (matched by contact id). impu must be a sip:/sips:
// URI without parameters (a tel URI has no GRUU: RFC 5627 §3.1 builds
// GRUUs on SIP URIs only); for any other impu, or when no contact has an
// instance, cs is returned as is. cs is not modified: the elements are
// shared between the registration elements of a set.
func (n *Notifier) withGRUUs(impu string, cs []reginfo.Contact, bs []binding.Contact) []reginfo.Contact {
	if !strings.HasPrefix(impu, "sip:") && !strings.HasPrefix(impu, "sips:") {
		return cs
	}
	var out []reginfo.Contact
	for i, c := range cs {
		inst := instanceOf(c)
		if inst == "" || c.State != reginfo.ContactActive {
			continue
		}
		if out == nil {
			out = append([]reginfo.Contact(nil), cs...)
		}
		out[i].PubGRUU = gruu.Public(impu, inst)
		if n.cfg.GRUU == nil {
			continue
		}
		for j := range bs {
			b := &bs[j]
			if contactID(b) != c.ID {
				continue
			}
			first := b.FirstCSeq
			if first == 0 || first > b.CSeq {
				first = b.CSeq
			}
			out[i].TempGRUU = &reginfo.TempGRUU{URI: n.cfg.GRUU.TempURI(impu, inst, b.CallID, b.CSeq, b.Registered), FirstCSeq: first}
			break
		}
	}
	if out == nil {
		return cs
	}
	return out
}

// instanceOf is the +sip.instance of c (angle brackets removed), "" when
// it has none.
func instanceOf(c reginfo.Contact) string {
	for _, p := range c.UnknownParams {
		if strings.EqualFold(p.Name, "+sip.instance") {
			return strings.Trim(p.Value, "<>")
		}
	}
	return ""
}
