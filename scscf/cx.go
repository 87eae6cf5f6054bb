package scscf

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/imscore/imscore/pkg/cxclient"
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

// mar sends MAR through the Cx client (TS 29.228 §6.3.1, TS 29.229 §6.1.7)
// for impi/impu asking for n vectors of scheme; resync, when not nil, is
// RAND‖AUTS for SIP-Authorization (TS 33.203 §6.1.2). It returns the
// usable vectors of the MAA; items of an unknown scheme or with wrong
// lengths are logged and skipped. Errors: *cxclient.Error.
func (s *Server) mar(ctx context.Context, impi, impu, scheme string, n int, resync []byte) ([]*vector, error) {
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
		return nil, &cxclient.Error{Command: "MAR", Code: diameter.DiameterUnableToComply, Err: errors.New("MAA holds no usable SIP-Auth-Data-Item")}
	}
	return out, nil
}

// sar sends SAR through the Cx client (TS 29.228 §6.1.2, TS 29.229
// §6.1.3) and returns the User-Data of the SAA (nil when absent). Errors:
// *cxclient.Error.
func (s *Server) sar(ctx context.Context, impi, impu string, sat uint32, dataAvailable bool) ([]byte, error) {
	return s.cx.SAR(ctx, impi, impu, sat, dataAvailable)
}

// observeCx records a Cx exchange in scscf_cx_request_duration_seconds and,
// for a failure, scscf_cx_errors_total{kind}: "no_answer", "no_result" or
// the Result-Code / Experimental-Result-Code.
func (s *Server) observeCx(cmd string, took time.Duration, label string, success bool) {
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
func (s *Server) sarAsync(impi, impu string, sat uint32) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if _, err := s.sar(s.ctx, impi, impu, sat, true); err != nil {
			s.log.Warn("SAR failed", zapStr("impi", impi), zapStr("impu", impu), zapU32("type", sat), zapErr(err))
		}
	}()
}
