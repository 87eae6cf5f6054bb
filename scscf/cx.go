package scscf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
)

// SIP-Authentication-Scheme values this S-CSCF sends in MAR and understands
// in MAA (TS 29.229 §6.3.9; "Digest-AKAv2-MD5" and "Digest-MD5" are the
// spellings other IMS cores use for RFC 4169 and plain digest).
const (
	SchemeAKAv1   = "Digest-AKAv1-MD5"
	SchemeAKAv2   = "Digest-AKAv2-MD5"
	SchemeDigest  = "SIP Digest"
	SchemeMD5     = "Digest-MD5"
	SchemeUnknown = "Unknown"
)

// schemeFor maps the algorithm of an Authorization header ("" when the
// header or the parameter is absent) to the MAR scheme.
func schemeFor(alg string) string {
	switch strings.ToUpper(alg) {
	case strings.ToUpper(digest.AlgAKAv1):
		return SchemeAKAv1
	case strings.ToUpper(digest.AlgAKAv2):
		return SchemeAKAv2
	case "MD5":
		return SchemeDigest
	}
	return SchemeUnknown
}

// algFor maps an MAA scheme to the digest algorithm of the challenge.
func algFor(scheme string) (string, bool) {
	switch strings.ToLower(scheme) {
	case strings.ToLower(SchemeAKAv1), "akav1-md5":
		return digest.AlgAKAv1, true
	case strings.ToLower(SchemeAKAv2), "akav2-md5":
		return digest.AlgAKAv2, true
	case strings.ToLower(SchemeDigest), strings.ToLower(SchemeMD5), "digest", "md5":
		return digest.AlgMD5, true
	}
	return "", false
}

// vector is one SIP-Auth-Data-Item of an MAA: an AKA quintet or an HA1.
type vector struct {
	scheme  string // as the HSS wrote it
	alg     string // digest.AlgAKAv1, AlgAKAv2 or AlgMD5
	sipAuth []byte // SIP-Authenticate: RAND‖AUTN (AKA)
	xres    []byte // SIP-Authorization (AKA)
	ck, ik  []byte
	ha1     string // MD5: Digest-HA1 (lower hex)
	fetched time.Time
}

// HSSError is a failed Cx exchange: either no answer (Err set: no route,
// timeout, closed connection) or an answer with a non-success result.
type HSSError struct {
	Command      string // "MAR", "SAR"
	Code         uint32 // Result-Code or Experimental-Result-Code; 0 without answer
	Experimental bool
	Err          error
}

func (e *HSSError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: HSS not reachable: %v", e.Command, e.Err)
	}
	return fmt.Sprintf("%s: HSS answered %d", e.Command, e.Code)
}

func (e *HSSError) Unwrap() error { return e.Err }

// timedOut reports whether the HSS did not answer in time.
func (e *HSSError) timedOut() bool {
	return e.Err != nil && (errors.Is(e.Err, context.DeadlineExceeded))
}

func (s *Server) cxRequest(cmd uint32) *diam.Message {
	m := s.node.NewRequest(cmd, diameter.AppCx, s.cfg.Domain, s.cfg.HSSHost)
	return m
}

func (s *Server) cxSend(ctx context.Context, name string, req *diam.Message) (*diam.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HSSTimeout)
	defer cancel()
	start := time.Now()
	ans, err := s.node.Send(ctx, req)
	s.metrics.cxLatency.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.cxErrors.WithLabelValues(name, "no_answer").Inc()
		return nil, &HSSError{Command: name, Err: err}
	}
	code, exp, ok := diameter.Result(ans)
	if !ok {
		s.metrics.cxErrors.WithLabelValues(name, "no_result").Inc()
		return nil, &HSSError{Command: name, Code: diameter.DiameterUnableToComply, Err: errors.New("answer without Result-Code")}
	}
	if code < 2000 || code >= 3000 {
		s.metrics.cxErrors.WithLabelValues(name, fmt.Sprint(code)).Inc()
		return ans, &HSSError{Command: name, Code: code, Experimental: exp}
	}
	return ans, nil
}

// mar sends MAR (TS 29.228 §6.3.1, TS 29.229 §6.1.7) for impi/impu asking
// for n vectors of scheme; resync, when not nil, is RAND‖AUTS for
// SIP-Authorization (TS 33.203 §6.1.2). It returns the vectors of the MAA.
func (s *Server) mar(ctx context.Context, impi, impu, scheme string, n int, resync []byte) ([]*vector, error) {
	req := s.cxRequest(diameter.CmdMultimediaAuth)
	req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	item := []*diam.AVP{diameter.NewAVP(diameter.AVPSIPAuthenticationScheme, datatype.UTF8String(scheme))}
	if resync != nil {
		item = append(item, diameter.NewAVP(diameter.AVPSIPAuthorization, datatype.OctetString(resync)))
	}
	req.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem, item...))
	req.AddAVP(diameter.NewAVP(diameter.AVPSIPNumberAuthItems, datatype.Unsigned32(uint32(n))))
	req.AddAVP(diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String(s.cfg.ServerName)))
	ans, err := s.cxSend(ctx, "MAR", req)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []*vector
	for _, it := range diameter.FindAll(ans, diameter.AVPSIPAuthDataItem) {
		kids := diameter.Children(it)
		v := &vector{fetched: now}
		for _, a := range kids {
			switch diameter.IdentityOf(a) {
			case diameter.AVPSIPAuthenticationScheme:
				v.scheme, _ = diameter.AsString(a)
			case diameter.AVPSIPAuthenticate:
				v.sipAuth, _ = diameter.AsBytes(a)
			case diameter.AVPSIPAuthorization:
				v.xres, _ = diameter.AsBytes(a)
			case diameter.AVPConfidentialityKey:
				v.ck, _ = diameter.AsBytes(a)
			case diameter.AVPIntegrityKey:
				v.ik, _ = diameter.AsBytes(a)
			case diameter.AVPSIPDigestAuthenticate:
				for _, d := range diameter.Children(a) {
					if diameter.AVPDigestHA1.Is(d) {
						v.ha1, _ = diameter.AsString(d)
					}
				}
			}
		}
		alg, ok := algFor(v.scheme)
		if !ok {
			s.log.Warn("MAA: unsupported SIP-Authentication-Scheme ignored", zapStr("scheme", v.scheme), zapStr("impi", impi))
			continue
		}
		v.alg = alg
		switch alg {
		case digest.AlgMD5:
			if v.ha1 == "" && len(v.xres) == 32 { // some HSSs put HA1 in SIP-Authorization
				v.ha1 = string(v.xres)
			}
			v.ha1 = strings.ToLower(v.ha1)
			if _, err := hex.DecodeString(v.ha1); err != nil || len(v.ha1) != 32 {
				s.log.Warn("MAA: SIP Digest item without a valid Digest-HA1", zapStr("impi", impi))
				continue
			}
		default:
			if len(v.sipAuth) < 32 || len(v.xres) < 4 || len(v.xres) > 16 || len(v.ck) != 16 || len(v.ik) != 16 {
				s.log.Warn("MAA: malformed AKA item ignored", zapStr("impi", impi))
				continue
			}
			v.sipAuth = v.sipAuth[:32]
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, &HSSError{Command: "MAR", Code: diameter.DiameterUnableToComply, Err: errors.New("MAA holds no usable SIP-Auth-Data-Item")}
	}
	return out, nil
}

// sar sends SAR (TS 29.228 §6.1.2, TS 29.229 §6.1.3) and returns the
// User-Data of the SAA (nil when absent).
func (s *Server) sar(ctx context.Context, impi, impu string, sat uint32, dataAvailable bool) ([]byte, error) {
	req := s.cxRequest(diameter.CmdServerAssignment)
	if impi != "" {
		req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	}
	if impu != "" {
		req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	}
	req.AddAVP(diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String(s.cfg.ServerName)))
	req.AddAVP(diameter.NewAVP(diameter.AVPServerAssignmentType, datatype.Enumerated(sat)))
	uda := diameter.UserDataNotAvailable
	if dataAvailable {
		uda = diameter.UserDataAlreadyAvailable
	}
	req.AddAVP(diameter.NewAVP(diameter.AVPUserDataAlreadyAvailable, datatype.Enumerated(uda)))
	ans, err := s.cxSend(ctx, "SAR", req)
	if err != nil {
		return nil, err
	}
	if a := diameter.Find(ans, diameter.AVPUserData); a != nil {
		b, _ := diameter.AsBytes(a)
		return b, nil
	}
	return nil, nil
}

// sarAsync sends a SAR whose outcome changes nothing locally (failure,
// timeout and de-registration notices), logging failures.
func (s *Server) sarAsync(impi, impu string, sat uint32) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if _, err := s.sar(s.ctx, impi, impu, sat, true); err != nil {
			s.log.Warn("SAR failed", zapStr("impi", impi), zapStr("impu", impu), zapU32("type", sat), zapErr(err))
		}
	}()
}
