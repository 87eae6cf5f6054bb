package isc

// Charging headers of requests the S-CSCF sends and of the responses it
// returns (TS 24.229 §5.4.3.2, §5.4.3.3; RFC 7315 §5.5-5.6). The
// P-Charging-Vector's IOIs name the networks at the two ends of one leg:
// type 1 between the S-CSCF and the P-CSCF, type 2 between the originating
// and the terminating network, type 3 between the S-CSCF and an AS
// (TS 24.229 §4.5.4, TS 32.260). The S-CSCF fills the orig-ioi of what it
// sends on a leg it starts and the term-ioi of what it answers on a leg
// the other network started.

import (
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// setChargingAddresses puts the served user's charging function addresses
// in P-Charging-Function-Addresses (replacing any), for a next hop inside
// the home network: an AS, or the terminating P-CSCF (TS 24.229 §5.4.3.2
// step 5, §5.4.3.3 step 9). Without addresses from the HSS any value from
// upstream is left as it is.
func setChargingAddresses(req *sip.Request, p imsheader.PChargingFunctionAddresses) {
	if p.Empty() {
		return
	}
	imsheader.SetHeader(req, imsheader.HeaderPChargingFunctionAddresses, p.String())
}

// startLeg sets the P-Charging-Vector of req for a leg this S-CSCF
// starts: the icid (and icid-generated-at) kept, a new icid when req has
// no usable vector, orig-ioi set to the home domain, term-ioi removed
// (the far end of the leg fills it in its responses).
func (s *Router) startLeg(req *sip.Request) {
	pcv, err := imsheader.GetPChargingVector(req)
	if err != nil || pcv == nil {
		fresh := imsheader.NewPChargingVector(imsheader.NewICID(), s.cfg.SIPHost)
		pcv = &fresh
	}
	out := imsheader.NewPChargingVector(pcv.ICID(), pcv.ICIDGeneratedAt())
	out.SetOrigIOI(s.cfg.Domain)
	imsheader.SetPChargingVector(req, out)
}

// chargingTowardsAS prepares the charging headers of a request to an AS
// (ISC): the served user's P-Charging-Function-Addresses, and in
// P-Charging-Vector the icid kept, orig-ioi set to the home domain and
// term-ioi removed (a type 3 IOI exchange between the S-CSCF and the AS,
// TS 24.229 §5.4.3.2 step 4, §5.4.3.3 step 3).
func (s *Router) chargingTowardsAS(req *sip.Request, st *iscState) {
	setChargingAddresses(req, st.charging)
	s.startLeg(req)
}

// chargingTowardsTerminatingNetwork prepares the P-Charging-Vector of an
// originating request leaving this S-CSCF for the terminating network
// (the I-CSCF, or the breakout route): a type 2 orig-ioi naming the home
// network and no term-ioi, which the terminating network sets in its
// responses (TS 24.229 §5.4.3.2).
func (s *Router) chargingTowardsTerminatingNetwork(req *sip.Request) {
	s.startLeg(req)
}

// receivedOrigIOI is the orig-ioi of req's P-Charging-Vector, "" when it
// has none (or no usable vector). For a terminating request it is the
// type 2 orig-ioi of the originating network, which the S-CSCF returns in
// its responses (TS 24.229 §5.4.3.3).
func receivedOrigIOI(req *sip.Request) string {
	pcv, err := imsheader.GetPChargingVector(req)
	if err != nil || pcv == nil {
		return ""
	}
	return pcv.OrigIOI()
}

// chargingTowardsPCSCF prepares the charging headers of a terminating
// request to the served user's P-CSCF (TS 24.229 §5.4.3.3): the served
// user's P-Charging-Function-Addresses and a P-Charging-Vector with a
// type 1 orig-ioi naming the home network and no term-ioi (the P-CSCF sets
// its type 1 term-ioi in its responses). It returns the edit of the
// responses (a sipproxy OnResponse hook), see answerAsTerminatingNetwork.
func (s *Router) chargingTowardsPCSCF(req *sip.Request, p imsheader.PChargingFunctionAddresses, origIOI string) func(sipproxy.Target, *sip.Response) {
	setChargingAddresses(req, p)
	s.startLeg(req)
	pcv, _ := imsheader.GetPChargingVector(req)
	return func(_ sipproxy.Target, res *sip.Response) { s.answerAsTerminatingNetwork(res, pcv, origIOI) }
}

// answerAsTerminatingNetwork sets the P-Charging-Vector of a response the
// terminating S-CSCF returns towards the originating network (TS 24.229
// §5.4.3.3): the icid of the response's vector (else of sent, the vector
// of the request; without either the response is left alone), orig-ioi
// set back to origIOI, the type 2 orig-ioi the request arrived with
// (none when it arrived without), and a type 2 term-ioi naming the home
// network. The type 1 or type 3 IOIs of the leg the response came over
// do not go on.
func (s *Router) answerAsTerminatingNetwork(res *sip.Response, sent *imsheader.PChargingVector, origIOI string) {
	in, err := imsheader.GetPChargingVector(res)
	if err != nil || in == nil {
		in = sent
	}
	if in == nil {
		return
	}
	out := imsheader.NewPChargingVector(in.ICID(), in.ICIDGeneratedAt())
	if origIOI != "" {
		out.SetOrigIOI(origIOI)
	}
	out.SetTermIOI(s.cfg.Domain)
	imsheader.SetPChargingVector(res, out)
}

// chargingFromAS edits a response an AS returns in the served user's iFC
// chain: in a terminating chain the response goes on towards the
// originating network, so it gets the type 2 IOIs
// (answerAsTerminatingNetwork); in an originating chain it is left alone.
func (s *Router) chargingFromAS(st *iscState, req *sip.Request, res *sip.Response) {
	if st.orig() {
		return
	}
	pcv, _ := imsheader.GetPChargingVector(req)
	s.answerAsTerminatingNetwork(res, pcv, st.origIOI)
}
