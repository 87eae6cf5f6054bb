// Package cx answers the Cx requests of the I-CSCF and S-CSCF (TS 29.228
// §6, TS 29.229 §6): UAR, MAR, SAR and LIR, and sends the HSS-initiated RTR
// and PPR. Subscriber data comes from hss/store.
//
// Error mapping: an unknown identity is Experimental-Result
// DIAMETER_ERROR_USER_UNKNOWN (5001); any database failure or timeout is
// returned as a plain error, which the diameter.Node answers with
// DIAMETER_UNABLE_TO_COMPLY (5012) — never a positive answer.
package cx

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/userdata"
)

// SIP-Authentication-Scheme values (TS 29.229 §6.3.9, TS 33.203).
const (
	SchemeAKAv1     = "Digest-AKAv1-MD5"
	SchemeAKAv2     = "Digest-AKAv2-MD5"
	SchemeSIPDigest = "SIP Digest"
	SchemeDigestMD5 = "Digest-MD5"
	SchemeUnknown   = "Unknown"
)

// Server answers Cx requests from the data in Store.
type Server struct {
	Store *store.Store
	Node  *diameter.Node
	Log   *zap.Logger
	// MaxAuthItems caps SIP-Number-Auth-Items (TS 29.228 §6.3: the HSS
	// may return fewer vectors than asked). Default 5, at most 64.
	MaxAuthItems int
}

// Handler is where Register installs handlers (a *diameter.Node, or a
// wrapper adding metrics).
type Handler interface {
	Handle(cmd uint32, app diameter.App, h diameter.HandlerFunc)
}

// Register installs the UAR, MAR, SAR and LIR handlers.
func (s *Server) Register(n Handler) {
	n.Handle(diameter.CmdUserAuthorization, diameter.AppCx, s.UAR)
	n.Handle(diameter.CmdMultimediaAuth, diameter.AppCx, s.MAR)
	n.Handle(diameter.CmdServerAssignment, diameter.AppCx, s.SAR)
	n.Handle(diameter.CmdLocationInfo, diameter.AppCx, s.LIR)
}

func (s *Server) log() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

func exp(code uint32) error { return &diameter.ResultError{Code: code, Experimental: true} }
func res(code uint32) error { return &diameter.ResultError{Code: code} }

// lookupErr maps a store error: ErrNotFound → 5001, others stay errors
// (→ 5012).
func lookupErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return exp(diameter.DiameterErrorUserUnknown)
	}
	return err
}

func vstr(code diameter.AVPCode, v string) *diam.AVP {
	return diameter.NewAVP(code, datatype.UTF8String(v))
}

// pair looks up impi and impu and their association with one query: 5001
// when either is unknown, 5002 when they do not belong together.
func (s *Server) pair(ctx context.Context, impi, impu string) (store.PairInfo, error) {
	pi, err := s.Store.Pair(ctx, impi, impu)
	if err != nil {
		return pi, lookupErr(err)
	}
	if !pi.Associated {
		return pi, exp(diameter.DiameterErrorIdentitiesDontMatch)
	}
	return pi, nil
}

// serverCapabilities builds Server-Capabilities (TS 29.229 §6.3.4) from the
// provisioned S-CSCFs: the union of their capabilities and their names.
func (s *Server) serverCapabilities(ctx context.Context) (*diam.AVP, error) {
	list, err := s.Store.SCSCFCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	var kids []*diam.AVP
	seenM, seenO := map[int32]bool{}, map[int32]bool{}
	for _, x := range list {
		for _, c := range x.MandatoryCapabilities {
			if !seenM[c] {
				seenM[c] = true
				kids = append(kids, diameter.NewAVP(diameter.AVPMandatoryCapability, datatype.Unsigned32(uint32(c))))
			}
		}
	}
	for _, x := range list {
		for _, c := range x.OptionalCapabilities {
			if !seenO[c] {
				seenO[c] = true
				kids = append(kids, diameter.NewAVP(diameter.AVPOptionalCapability, datatype.Unsigned32(uint32(c))))
			}
		}
	}
	for _, x := range list {
		kids = append(kids, vstr(diameter.AVPServerName, x.Name))
	}
	return diameter.Grouped(diameter.AVPServerCapabilities, kids...), nil
}

// UAR answers a User-Authorization-Request (TS 29.228 §6.1.1.1).
func (s *Server) UAR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	impuS := diameter.String(req, diameter.AVPPublicIdentity)
	visited := diameter.String(req, diameter.AVPVisitedNetworkIdentifier)
	uat, ok := diameter.Uint32(req, diameter.AVPUserAuthorizationType)
	if !ok {
		uat = diameter.UATRegistration
	}
	if uat > diameter.UATRegistrationAndCapabilities {
		return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue,
			FailedAVP: diameter.Find(req, diameter.AVPUserAuthorizationType)}
	}
	pi, err := s.pair(ctx, impi, impuS)
	if err != nil {
		return nil, err
	}
	p, u := pi.IMPI, pi.IMPU
	if uat != diameter.UATDeRegistration {
		// Step 3: barring, and identities that may not register at all
		// (PSIs, can-register false) → DIAMETER_AUTHORIZATION_REJECTED.
		if u.Barring || !u.CanRegister || u.Type == store.DistinctPSI || u.Type == store.WildcardedPSI {
			return nil, res(diameter.DiameterAuthorizationRejected)
		}
		// Step 4: roaming (no query for the home network).
		allowed, err := s.Store.VisitedNetworkAllowedIMSU(ctx, p.IMSUID, impi, visited)
		if err != nil {
			return nil, lookupErr(err)
		}
		if !allowed {
			return nil, exp(diameter.DiameterErrorRoamingNotAllowed)
		}
	}
	state, scscf := u.State, pi.SCSCFName
	switch uat {
	case diameter.UATDeRegistration:
		if state == store.NotRegistered || scscf == "" {
			return nil, exp(diameter.DiameterErrorIdentityNotRegistered)
		}
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(vstr(diameter.AVPServerName, scscf))
		return ans, nil
	case diameter.UATRegistrationAndCapabilities:
		// Step 5: the I-CSCF wants to select an S-CSCF anew (the assigned
		// one did not answer): capabilities whatever the state, Result-Code
		// DIAMETER_SUCCESS, no Server-Name.
		caps, err := s.serverCapabilities(ctx)
		if err != nil {
			return nil, err
		}
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(caps)
		return ans, nil
	}
	// REGISTRATION. Step 5: registered, unregistered (S-CSCF kept for
	// unregistered services), or not registered with an S-CSCF name
	// stored (pending after MAR, or kept by *_STORE_SERVER_NAME) →
	// DIAMETER_SUBSEQUENT_REGISTRATION + that name.
	if scscf != "" {
		ans := s.Node.AnswerExperimental(req, diameter.DiameterSubsequentRegistration)
		ans.AddAVP(vstr(diameter.AVPServerName, scscf))
		return ans, nil
	}
	// No S-CSCF name stored → DIAMETER_FIRST_REGISTRATION with the
	// subscription's preferred S-CSCF, else Server-Capabilities.
	ans := s.Node.AnswerExperimental(req, diameter.DiameterFirstRegistration)
	if p.PreferredSCSCF != "" {
		ans.AddAVP(vstr(diameter.AVPServerName, p.PreferredSCSCF))
		return ans, nil
	}
	caps, err := s.serverCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	ans.AddAVP(caps)
	return ans, nil
}

// akaScheme maps a requested SIP-Authentication-Scheme to the store's AKA
// scheme for PairReserve ("aka", "akav2", "" for Unknown/absent); false
// for digest schemes.
func akaScheme(requested string) (string, bool) {
	switch canonicalScheme(requested) {
	case SchemeAKAv1:
		return "aka", true
	case SchemeAKAv2:
		return "akav2", true
	case SchemeUnknown, "":
		return "", true
	}
	return "", false
}

// canonicalScheme returns requested spelt as TS 29.229 §6.3.9 spells it
// when it names a known scheme regardless of case (Kamailio's S-CSCF sends
// "unknown" when the UE names no algorithm), else requested trimmed.
func canonicalScheme(requested string) string {
	r := strings.TrimSpace(requested)
	for _, s := range []string{SchemeAKAv1, SchemeAKAv2, SchemeSIPDigest, SchemeDigestMD5, SchemeUnknown, "Digest"} {
		if strings.EqualFold(r, s) {
			return s
		}
	}
	return r
}

// resolveScheme maps the requested SIP-Authentication-Scheme to the store's
// scheme name ("aka", "akav2", "md5") and the name to answer with; 5006
// when the IMPI may not use it.
func resolveScheme(p store.IMPI, requested string) (internal, answer string, err error) {
	switch r := canonicalScheme(requested); r {
	case SchemeAKAv1:
		internal, answer = "aka", SchemeAKAv1
	case SchemeAKAv2:
		internal, answer = "akav2", SchemeAKAv2
	case SchemeSIPDigest, SchemeDigestMD5, "Digest":
		internal, answer = "md5", r
	case SchemeUnknown, "":
		internal = p.DefaultScheme
		if internal == "" && len(p.AuthSchemes) > 0 {
			internal = p.AuthSchemes[0]
		}
		switch internal {
		case "aka":
			answer = SchemeAKAv1
		case "akav2":
			answer = SchemeAKAv2
		case "md5":
			answer = SchemeSIPDigest
		default:
			return "", "", exp(diameter.DiameterErrorAuthSchemeNotSupported)
		}
	default:
		return "", "", exp(diameter.DiameterErrorAuthSchemeNotSupported)
	}
	for _, x := range p.AuthSchemes {
		if x == internal {
			return internal, answer, nil
		}
	}
	return "", "", exp(diameter.DiameterErrorAuthSchemeNotSupported)
}

// MAR answers a Multimedia-Auth-Request (TS 29.228 §6.3.1, TS 29.229
// §6.1.7-8).
func (s *Server) MAR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	impuS := diameter.String(req, diameter.AVPPublicIdentity)
	serverName := diameter.String(req, diameter.AVPServerName)
	n, _ := diameter.Uint32(req, diameter.AVPSIPNumberAuthItems)
	requested := diameter.String(req, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthenticationScheme)
	var authz []byte
	if a := diameter.Find(req, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthorization); a != nil {
		authz, _ = diameter.AsBytes(a)
	}
	max := s.MaxAuthItems
	if max <= 0 {
		max = 5
	}
	if max > 64 {
		max = 64
	}
	count := int(n)
	if count < 1 {
		count = 1
	}
	if count > max {
		count = max
	}
	// Hot path: an AKA MAR without AUTS looks the pair up and reserves the
	// SQNs in one round trip; the reservation is made only when the
	// checks below will pass (an SQN taken for a request answered with an
	// error is simply never used: SQNs stay unique).
	var (
		pi       store.PairInfo
		cr       store.AKACredentials
		sqns     []uint64
		reserved bool
		err      error
	)
	speculative, ok := akaScheme(requested)
	if ok && len(authz) == 0 {
		// The pending S-CSCF assignment (below) is stored with the
		// reservation when there is one.
		pi, cr, sqns, reserved, err = s.Store.PairReservePending(ctx, impi, impuS, speculative, count,
			serverName, diameter.String(req, diameter.AVPOriginHost))
		if err == nil && !pi.Associated {
			err = exp(diameter.DiameterErrorIdentitiesDontMatch)
		}
		if err != nil {
			return nil, lookupErr(err)
		}
	} else if pi, err = s.pair(ctx, impi, impuS); err != nil {
		return nil, err
	}
	p := pi.IMPI
	internal, answerScheme, err := resolveScheme(p, requested)
	if err != nil {
		return nil, err
	}
	resync := len(authz) > 0 && internal != "md5"
	switch {
	case serverName == "" || serverName == pi.SCSCFName || reserved:
	case resync && pi.SCSCFName != "":
		// TS 29.228 §6.3.1 / §8.1: on a synchronisation failure the HSS
		// compares the S-CSCF names and does not overwrite a different
		// stored one; it cannot process the AUTS for another S-CSCF.
		return nil, &diameter.ResultError{Code: diameter.DiameterUnableToComply,
			Message: "resynchronisation from an S-CSCF other than the stored one"}
	default:
		// §6.3.1, §8.1: the name is stored (overwritten) while the
		// registration is pending.
		if _, err := s.Store.SetPendingAssignment(ctx, impuS, serverName, diameter.String(req, diameter.AVPOriginHost), impi); err != nil {
			return nil, lookupErr(err)
		}
	}
	if internal == "md5" {
		return s.digestMAA(req, p, answerScheme)
	}
	if resync {
		if err := s.resync(ctx, impi, authz, req); err != nil {
			return nil, err
		}
	}
	if !reserved {
		cr, sqns, err = s.Store.ReserveSQNs(ctx, impi, count)
		if errors.Is(err, store.ErrNoAKA) {
			return nil, exp(diameter.DiameterErrorAuthSchemeNotSupported)
		}
		if err != nil {
			return nil, lookupErr(err)
		}
	}
	creds := credentials(cr)
	ans := s.Node.Answer(req, diameter.DiameterSuccess)
	ans.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	ans.AddAVP(vstr(diameter.AVPPublicIdentity, impuS))
	ans.AddAVP(diameter.NewAVP(diameter.AVPSIPNumberAuthItems, datatype.Unsigned32(uint32(len(sqns)))))
	for i, sqn := range sqns {
		v, err := aka.GenerateVector(creds, sqn, nil)
		if err != nil {
			return nil, fmt.Errorf("cx: MAR vector for %s: %w", impi, err)
		}
		ans.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem,
			diameter.NewAVP(diameter.AVPSIPItemNumber, datatype.Unsigned32(uint32(i+1))),
			vstr(diameter.AVPSIPAuthenticationScheme, answerScheme),
			diameter.NewAVP(diameter.AVPSIPAuthenticate, datatype.OctetString(v.SIPAuthenticate())),
			diameter.NewAVP(diameter.AVPSIPAuthorization, datatype.OctetString(v.XRES)),
			diameter.NewAVP(diameter.AVPConfidentialityKey, datatype.OctetString(v.CK)),
			diameter.NewAVP(diameter.AVPIntegrityKey, datatype.OctetString(v.IK)),
		))
	}
	return ans, nil
}

func credentials(cr store.AKACredentials) aka.Credentials {
	c := aka.Credentials{K: cr.K[:], AMF: cr.AMF[:]}
	if cr.OPIsOPc {
		c.OPc = cr.OP[:]
	} else {
		c.OP = cr.OP[:]
	}
	return c
}

// resync handles SIP-Authorization = RAND ‖ AUTS (TS 29.228 §6.3.1: the
// HSS processes AUTS as TS 33.203 / TS 33.102 §6.3.5 say and returns the
// requested vectors with DIAMETER_SUCCESS). A valid AUTS resets the SQN to
// SQN_MS; an AUTS whose MAC-S does not verify leaves the SQN as it is
// (§6.3.5 step 5) and the fresh vectors that follow are taken from the
// unchanged counter (step 6) — no error, no reset. A SIP-Authorization
// that is not 16+14 octets is DIAMETER_INVALID_AVP_VALUE (5004).
func (s *Server) resync(ctx context.Context, impi string, authz []byte, req *diam.Message) error {
	rnd, auts, err := aka.SplitSIPAuthorization(authz)
	if err != nil {
		return &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue, Message: "SIP-Authorization is not RAND||AUTS",
			FailedAVP: diameter.Find(req, diameter.AVPSIPAuthDataItem)}
	}
	cr, err := s.Store.Credentials(ctx, impi)
	if errors.Is(err, store.ErrNoAKA) {
		return exp(diameter.DiameterErrorAuthSchemeNotSupported)
	}
	if err != nil {
		return lookupErr(err)
	}
	opc, err := credentials(cr).ResolveOPc()
	if err != nil {
		return err
	}
	sqnMS, err := aka.VerifyAUTS(cr.K[:], opc, rnd, auts)
	if err != nil {
		s.log().Warn("MAR resync: AUTS does not verify (MAC-S), SQN kept", zap.String("impi", impi), zap.Error(err))
		return nil
	}
	return lookupErr(s.Store.ResyncSQN(ctx, impi, sqnMS))
}

// digestMAA answers a SIP Digest MAR with SIP-Digest-Authenticate
// {Digest-Realm, Digest-QoP, Digest-HA1} (TS 29.229 §6.3.13, §6.3.36).
func (s *Server) digestMAA(req *diam.Message, p store.IMPI, scheme string) (*diam.Message, error) {
	realm, ha1 := p.DigestRealm, p.DigestHA1
	if ha1 == "" {
		if p.Password == nil {
			return nil, exp(diameter.DiameterErrorAuthSchemeNotSupported)
		}
		if realm == "" {
			if i := strings.LastIndexByte(p.Identity, '@'); i >= 0 {
				realm = p.Identity[i+1:]
			}
		}
		h := md5.Sum([]byte(p.Identity + ":" + realm + ":" + string(p.Password)))
		ha1 = hex.EncodeToString(h[:])
	}
	ans := s.Node.Answer(req, diameter.DiameterSuccess)
	ans.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(p.Identity)))
	ans.AddAVP(vstr(diameter.AVPPublicIdentity, diameter.String(req, diameter.AVPPublicIdentity)))
	ans.AddAVP(diameter.NewAVP(diameter.AVPSIPNumberAuthItems, datatype.Unsigned32(1)))
	ans.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem,
		diameter.NewAVP(diameter.AVPSIPItemNumber, datatype.Unsigned32(1)),
		vstr(diameter.AVPSIPAuthenticationScheme, scheme),
		diameter.Grouped(diameter.AVPSIPDigestAuthenticate,
			diameter.NewAVP(diameter.AVPDigestRealm, datatype.UTF8String(realm)),
			diameter.NewAVP(diameter.AVPDigestQoP, datatype.UTF8String("auth")),
			diameter.NewAVP(diameter.AVPDigestHA1, datatype.UTF8String(ha1)),
		),
	))
	return ans, nil
}

// UserData builds the User-Data XML (TS 29.228 Annex E) for impu's
// implicit registration set as seen by impi ("" = none), and the
// Charging-Information AVP (nil when none).
func (s *Server) UserData(ctx context.Context, impi, impu string) ([]byte, *diam.AVP, error) {
	if impi == "" {
		// No User-Name (e.g. UNREGISTERED_USER): report the first IMPI
		// associated with the IMPU; PrivateID is mandatory in the XML.
		list, err := s.Store.IMPIsOfIMPU(ctx, impu)
		if err != nil {
			return nil, nil, lookupErr(err)
		}
		if len(list) > 0 {
			impi = list[0]
		}
	}
	sub, err := s.Store.SubscriptionData(ctx, impi, impu)
	if err != nil {
		return nil, nil, lookupErr(err)
	}
	x, err := userdata.Marshal(BuildSubscription(sub))
	if err != nil {
		return nil, nil, fmt.Errorf("cx: user data of %s: %w", impu, err)
	}
	return x, chargingAVP(sub.Charging), nil
}

func chargingAVP(ci *store.ChargingInfo) *diam.AVP {
	if ci == nil {
		return nil
	}
	var kids []*diam.AVP
	add := func(code diameter.AVPCode, v string) {
		if v != "" {
			kids = append(kids, diameter.NewAVP(code, datatype.DiameterURI(v)))
		}
	}
	add(diameter.AVPPrimaryEventChargingFunctionName, ci.PrimaryECF)
	add(diameter.AVPSecondaryEventChargingFunctionName, ci.SecondaryECF)
	add(diameter.AVPPrimaryChargingCollectionFunctionName, ci.PrimaryCCF)
	add(diameter.AVPSecondaryChargingCollectionFunctionName, ci.SecondaryCCF)
	if len(kids) == 0 {
		return nil
	}
	return diameter.Grouped(diameter.AVPChargingInformation, kids...)
}
