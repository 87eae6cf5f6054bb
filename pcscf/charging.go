package pcscf

// Charging headers at the edge (TS 24.229 §5.2.2, §5.2.6.3, §5.2.6.4,
// §5.2.7; RFC 7315 §4.5-4.6, §5.5-5.6): P-Charging-Vector and
// P-Charging-Function-Addresses are for the network's elements only,
// never for the UE. The P-CSCF keeps the charging function addresses of
// the 200 to a REGISTER with the contact and gives them to the core in the
// UE's initial requests and in the UE's answers to requests from the core.

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// chargingTowardsUE removes P-Charging-Vector and
// P-Charging-Function-Addresses from a request or response the P-CSCF
// sends to the UE.
func chargingTowardsUE(msg imsheader.Editable) {
	imsheader.RemoveHeaders(msg, imsheader.HeaderPChargingVector)
	imsheader.RemoveHeaders(msg, imsheader.HeaderPChargingFunctionAddresses)
}

// chargingAddresses returns the P-Charging-Function-Addresses of msg in
// canonical form ("ccf=a;ecf=b", quoted where an address is not a token),
// "" when msg has none. Several header instances are read as one list.
// A value that names neither a ccf nor an ecf, or does not parse, is an
// error.
func chargingAddresses(msg sip.Message) (string, error) {
	vals := imsheader.Values(msg, imsheader.HeaderPChargingFunctionAddresses)
	if len(vals) == 0 {
		return "", nil
	}
	p, err := imsheader.ParsePChargingFunctionAddresses(strings.Join(vals, ";"))
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// storedChargingAddresses is what the contact of a successful REGISTER
// keeps as its charging function addresses (TS 24.229 §5.2.2: the P-CSCF
// stores the P-Charging-Function-Addresses of the 200): those of the 200
// res, replacing any older ones; the previous contact's (prev, may be nil)
// when the 200 has none or an unusable value (logged).
func (s *PCSCF) storedChargingAddresses(res *sip.Response, prev *contacts.Contact) string {
	old := ""
	if prev != nil {
		old = prev.ChargingAddresses
	}
	v, err := chargingAddresses(res)
	if err != nil {
		s.log.Warn("200 to REGISTER with an unusable P-Charging-Function-Addresses: the stored one is kept",
			zap.String("value", strings.Join(imsheader.Values(res, imsheader.HeaderPChargingFunctionAddresses), ", ")), zap.Error(err))
		return old
	}
	if v == "" {
		return old
	}
	return v
}

// chargingFromUE prepares the charging headers of a request from the UE
// of contact c: a P-Charging-Function-Addresses the UE put in is removed
// (it is not trusted), and an initial request (not ACK) gets the addresses
// stored from the 200 to the REGISTER (TS 24.229 §5.2.6.3.3).
func chargingFromUE(req *sip.Request, c *contacts.Contact, initial bool) {
	imsheader.RemoveHeaders(req, imsheader.HeaderPChargingFunctionAddresses)
	if initial && !req.IsAck() && c.ChargingAddresses != "" {
		imsheader.SetHeader(req, imsheader.HeaderPChargingFunctionAddresses, c.ChargingAddresses)
	}
}

// chargingFromCore takes the charging headers off a request from the core
// to the UE of contact c (the UE never sees them, TS 24.229 §5.2.6.4) and
// returns the edit of the UE's responses to it (a sipproxy OnResponse
// hook): whatever charging headers the UE put in are removed and, for an
// initial request, P-Charging-Function-Addresses is set to those of the
// request, else to the addresses stored with the contact, and, when the
// request had a P-Charging-Vector, the response gets one with its icid,
// its orig-ioi (the S-CSCF's type 1 orig-ioi) and a type 1 term-ioi naming
// this P-CSCF's network (TS 24.229 §5.2.6.4, §5.2.7.3).
func (s *PCSCF) chargingFromCore(req *sip.Request, c *contacts.Contact, initial bool) func(sipproxy.Target, *sip.Response) {
	var answer *imsheader.PChargingVector
	if pcv, err := imsheader.GetPChargingVector(req); err == nil && pcv != nil {
		v := imsheader.NewPChargingVector(pcv.ICID(), pcv.ICIDGeneratedAt())
		if o := pcv.OrigIOI(); o != "" {
			v.SetOrigIOI(o)
		}
		v.SetTermIOI(s.cfg.Domain)
		answer = &v
	}
	pcfa, err := chargingAddresses(req)
	if err != nil {
		s.log.Info("request from the core with an unusable P-Charging-Function-Addresses: the stored one answers", zap.Error(err))
	}
	if pcfa == "" {
		pcfa = c.ChargingAddresses
	}
	chargingTowardsUE(req)
	return func(_ sipproxy.Target, res *sip.Response) {
		chargingTowardsUE(res)
		if !initial {
			return
		}
		if pcfa != "" {
			imsheader.SetHeader(res, imsheader.HeaderPChargingFunctionAddresses, pcfa)
		}
		if answer != nil {
			imsheader.SetPChargingVector(res, *answer)
		}
	}
}
