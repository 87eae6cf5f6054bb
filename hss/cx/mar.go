package cx

// Multimedia-Auth: MAR in, MAA out, with AKA vectors, SIP Digest HA1 and
// SQN resynchronisation (TS 29.228 §6.3, TS 29.229 §6.1.7-8, TS 33.102 §6.3.5).

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
)

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
	impuS := publicIdentity(req)
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

// SIP-Authentication-Scheme values (TS 29.229 §6.3.9, TS 33.203).
const (
	SchemeAKAv1     = "Digest-AKAv1-MD5"
	SchemeAKAv2     = "Digest-AKAv2-MD5"
	SchemeSIPDigest = "SIP Digest"
	SchemeDigestMD5 = "Digest-MD5"
	SchemeUnknown   = "Unknown"
)
