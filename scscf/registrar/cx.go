package registrar

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
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

// mar sends MAR through the Cx client (TS 29.228 §6.3.1, TS 29.229 §6.1.7)
// for impi/impu asking for n vectors of scheme; resync, when not nil, is
// RAND‖AUTS for SIP-Authorization (TS 33.203 §6.1.2). It returns the
// usable vectors of the MAA; items of an unknown scheme or with wrong
// lengths are logged and skipped. Errors: *cxclient.Error.
func (s *Registrar) mar(ctx context.Context, impi, impu, scheme string, n int, resync []byte) ([]*vector, error) {
	items, err := s.cx.MAR(ctx, impi, impu, scheme, n, resync)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []*vector
	for _, it := range items {
		v := &vector{fetched: now, scheme: it.Scheme, sipAuth: it.Authenticate, xres: it.Authorization, ck: it.CK, ik: it.IK, ha1: it.HA1}
		alg, ok := algFor(v.scheme)
		if !ok {
			s.log.Warn("MAA: unsupported SIP-Authentication-Scheme ignored", zap.String("scheme", v.scheme), zap.String("impi", impi))
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
				s.log.Warn("MAA: SIP Digest item without a valid Digest-HA1", zap.String("impi", impi))
				continue
			}
		default:
			if len(v.sipAuth) < 32 || len(v.xres) < 4 || len(v.xres) > 16 || len(v.ck) != 16 || len(v.ik) != 16 {
				s.log.Warn("MAA: malformed AKA item ignored", zap.String("impi", impi))
				continue
			}
			v.sipAuth = v.sipAuth[:32]
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, &cxclient.Error{Command: "MAR", Code: diameter.DiameterUnableToComply, Err: errors.New("MAA holds no usable SIP-Auth-Data-Item")}
	}
	return out, nil
}

// sar sends SAR through the Cx client (TS 29.228 §6.1.2, TS 29.229
// §6.1.3) and returns the User-Data of the SAA (nil when absent). Errors:
// *cxclient.Error.
func (s *Registrar) sar(ctx context.Context, impi, impu string, sat uint32, dataAvailable bool) (*cxclient.ServerAssignment, error) {
	return s.cx.SAR(ctx, impi, impu, sat, dataAvailable)
}

// observeCx records a Cx exchange in scscf_cx_request_duration_seconds and,
// for a failure, scscf_cx_errors_total{kind}: "no_answer", "no_result" or
// the Result-Code / Experimental-Result-Code.
func (s *Registrar) observeCx(cmd string, took time.Duration, label string, success bool) {
	s.metrics.cxLatency.WithLabelValues(cmd).Observe(took.Seconds())
	if success {
		return
	}
	switch label {
	case "timeout", "unreachable":
		label = "no_answer"
	}
	s.metrics.cxErrors.WithLabelValues(cmd, strings.TrimPrefix(label, "e")).Inc()
}

// sarAsync sends a SAR whose outcome changes nothing locally (failure,
// timeout and de-registration notices), logging failures.
func (s *Registrar) sarAsync(impi, impu string, sat uint32) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if _, err := s.sar(s.ctx, impi, impu, sat, true); err != nil {
			s.log.Warn("SAR failed", zap.String("impi", impi), zap.String("impu", impu), zap.Uint32("type", sat), zap.Error(err))
		}
	}()
}

// respondHSSError maps a failed MAR/SAR to the SIP answer: user errors of
// the HSS become 403 with a reason; a missing or failed HSS becomes 500
// (504 on timeout) with a Warning, never 403.
func (s *Registrar) respondHSSError(t *sipproxy.Txn, err error, alg, impi string) {
	he, ok := cxclient.AsError(err)
	if !ok {
		s.log.Error("HSS exchange", zap.Error(err))
		_ = t.Respond(500, "Server Internal Error", s.warning("HSS exchange failed"))
		return
	}
	s.log.Info("HSS error", zap.String("impi", impi), zap.Error(err))
	if he.Err == nil && he.Experimental {
		switch he.Code {
		case diameter.DiameterErrorUserUnknown:
			s.metrics.authFailures.WithLabelValues("user_unknown").Inc()
			_ = t.Respond(403, "Forbidden - user unknown")
			return
		case diameter.DiameterErrorIdentitiesDontMatch:
			s.metrics.authFailures.WithLabelValues("identities_dont_match").Inc()
			_ = t.Respond(403, "Forbidden - identities don't match")
			return
		case diameter.DiameterErrorAuthSchemeNotSupported:
			s.metrics.authFailures.WithLabelValues("scheme_not_supported").Inc()
			name := alg
			if name == "" {
				name = "Unknown"
			}
			_ = t.Respond(403, "Forbidden - authentication scheme "+name+" not supported")
			return
		case diameter.DiameterErrorRoamingNotAllowed:
			_ = t.Respond(403, "Forbidden - roaming not allowed")
			return
		}
	}
	if he.Err == nil && !he.Experimental && (he.Code == diameter.DiameterAuthorizationRejected || he.Code == diameter.DiameterAuthenticationRejected) {
		s.metrics.authFailures.WithLabelValues("hss_rejected").Inc()
		_ = t.Respond(403, "Forbidden - authorization rejected by the HSS")
		return
	}
	if he.TimedOut() {
		_ = t.Respond(504, "Server Time-out", s.warning("HSS did not answer "+he.Command))
		return
	}
	if he.Err != nil {
		_ = t.Respond(500, "Server Internal Error", s.warning("HSS unreachable: "+he.Command+" failed"))
		return
	}
	_ = t.Respond(500, "Server Internal Error", s.warning(fmt.Sprintf("HSS answered %s with %d", he.Command, he.Code)))
}

// AssignUnregistered is the S-CSCF registration procedure for a request
// to a user that is not registered here (TS 24.229 §5.4.3.3; TS 29.228
// §6.1.2): SAR UNREGISTERED_USER for impu, without User-Name. It returns
// the user profile of the SAA (Profile nil without User-Data) and the
// charging function addresses of its Charging-Information. When it reports
// false it has answered t: 404 for an IMPU the HSS does not know, the
// answer of respondHSSError for any other failure (500/504 with a
// Warning, never 403), 500 for User-Data that does not parse.
func (s *Registrar) AssignUnregistered(ctx context.Context, t *sipproxy.Txn, impu string) (binding.Unregistered, bool) {
	sa, err := s.sar(ctx, "", impu, diameter.SATUnregisteredUser, false)
	if err != nil {
		if he, ok := cxclient.AsError(err); ok && he.Is3GPP(diameter.DiameterErrorUserUnknown) {
			_ = t.Respond(404, "Not Found - user unknown")
			return binding.Unregistered{}, false
		}
		s.respondHSSError(t, err, "", "")
		return binding.Unregistered{}, false
	}
	out := binding.Unregistered{Charging: sa.Charging.Header()}
	if sa.UserData != nil {
		if out.Profile, err = userdata.Parse(sa.UserData); err != nil {
			s.log.Warn("SAA User-Data rejected", zap.String("impu", impu), zap.Error(err))
			_ = t.Respond(500, "Server Internal Error", s.warning("HSS sent invalid User-Data"))
			return binding.Unregistered{}, false
		}
	}
	return out, true
}
