package registrar

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// authenticate is the authentication stage (TS 24.229 §5.4.1.2.1,
// §5.4.1.2.2, §5.4.1.2.3; TS 33.203 §6.1). It reports true when the
// REGISTER is authenticated and may be registered; otherwise it has
// answered it:
//   - an integrity-protected REGISTER the registration already covers
//     (reauthWaived) is authenticated without a challenge;
//   - auts in the credentials: SQN resynchronisation, a new 401
//     (§5.4.1.2.3, resync);
//   - an IMPI locked out by failed-authentication throttling gets 403
//     with Retry-After (throttle.go), neither a challenge nor a check;
//   - a response to a nonce issued to this IMPI, unused and younger than
//     NonceLifetime: checked (verify); a wrong one gets SAR
//     AUTHENTICATION_FAILURE (§5.4.1.2.3), then 403;
//   - anything else gets a 401 challenge (§5.4.1.2.1), with stale=TRUE
//     when the nonce answered had expired.
func (s *Registrar) authenticate(ctx context.Context, r *regRequest) bool {
	cred := r.cred
	if cred != nil && s.reauthWaived(r) {
		s.metrics.auth.WithLabelValues("integrity_protected").Inc()
		return true
	}
	if cred != nil && cred.AUTS() != "" {
		s.resync(ctx, r.t, cred, r.impi, r.impu)
		return false
	}
	if s.throttled(r) {
		return false
	}
	if cred == nil {
		s.challenge(ctx, r.t, r.impi, r.impu, "", false, nil)
		return false
	}
	stale := false
	if cred.Nonce() != "" && cred.Response() != "" {
		c := s.auth.lookup(cred.Nonce())
		switch {
		case c == nil || c.impi != r.impi:
			s.metrics.auth.WithLabelValues("unknown_nonce").Inc()
		case time.Since(c.created) > s.cfg.NonceLifetime:
			s.auth.consume(c)
			stale = true
			s.metrics.auth.WithLabelValues("stale_nonce").Inc()
		default:
			ok, why := s.verify(c, cred, r.req)
			if !s.auth.consume(c) {
				s.metrics.auth.WithLabelValues("nonce_reused").Inc()
				break
			}
			if !ok {
				s.metrics.authFailures.WithLabelValues(why).Inc()
				s.log.Info("authentication failed", zap.String("impi", r.impi), zap.String("impu", r.impu), zap.String("cause", why))
				// The SAR goes before the 403: a UE that retries at once
				// must not have its new registration overtaken at the HSS
				// by the failure of the old attempt.
				if _, err := s.sar(ctx, r.impi, r.impu, diameter.SATAuthenticationFailure, true); err != nil {
					s.log.Warn("SAR failed", zap.String("impi", r.impi), zap.String("impu", r.impu),
						zap.Uint32("type", diameter.SATAuthenticationFailure), zap.Error(err))
				}
				s.guard.Failed(r.impi)
				_ = r.t.Respond(403, "Forbidden - Authentication failed")
				return false
			}
			s.guard.Succeeded(r.impi)
			s.metrics.auth.WithLabelValues("ok").Inc()
			return true
		}
	}
	s.challenge(ctx, r.t, r.impi, r.impu, cred.Algorithm(), stale, nil)
	return false
}

// reauthWaived reports whether a REGISTER needs no new challenge (TS
// 24.229 §5.4.1.2.1: the S-CSCF may skip authentication of a REGISTER
// that is integrity protected): with ReauthRegistered, the P-CSCF marked
// it integrity-protected "yes", "ipsec-3gpp", "tls-yes" or "ip-assoc-yes",
// and its IMPI already has the registration of the To IMPU with every
// Contact of the request bound (or the request only de-registers).
func (s *Registrar) reauthWaived(r *regRequest) bool {
	return s.cfg.ReauthProtected == ReauthRegistered && isProtected(r.cred.IntegrityProtected()) &&
		r.rec != nil && r.rec.impi == r.impi && (r.dereg || allBound(r.rec, r.contacts))
}

// isProtected reports whether the integrity-protected parameter the
// P-CSCF set marks a protected REGISTER (TS 24.229 §5.4.1.2.1).
func isProtected(v string) bool {
	switch strings.ToLower(v) {
	case digest.IntegrityYes, digest.IntegrityIPsec3GPP, digest.IntegrityTLSYes, digest.IntegrityIPAssocYes:
		return true
	}
	return false
}

// allBound reports whether every Contact of a REGISTER is a binding of
// rec.
func allBound(rec *record, cs []reqContact) bool {
	for _, c := range cs {
		found := false
		for _, b := range rec.contacts {
			if b.Key() == c.c.Key() {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// verify checks credentials against challenge c: AKAv1-MD5 with RES as the
// password (RFC 3310 §3.3), AKAv2-MD5 (RFC 4169), MD5 with the HSS's HA1
// (RFC 2617 with or without qop). It returns the failure cause for metrics.
func (s *Registrar) verify(c *challenge, cred *digest.Header, req *sip.Request) (bool, string) {
	if !strings.EqualFold(cred.Realm(), c.realm) {
		return false, "wrong_realm"
	}
	got := cred.Algorithm()
	if got == "" {
		got = digest.AlgMD5
	}
	if !strings.EqualFold(got, c.v.alg) {
		return false, "wrong_algorithm"
	}
	if cred.QOP() != "" && !s.auth.checkNC(c, cred.NC()) {
		return false, "nonce_count"
	}
	var ok bool
	var err error
	switch c.v.alg {
	case digest.AlgAKAv1:
		ok, err = digest.VerifyPassword(cred, string(req.Method), digest.AKAv1Password(c.v.xres), req.Body())
	case digest.AlgAKAv2:
		ok, err = digest.VerifyPassword(cred, string(req.Method), digest.AKAv2Password(c.v.xres, c.v.ik, c.v.ck), req.Body())
	default:
		ok, err = digest.VerifyHA1(cred, string(req.Method), c.v.ha1, req.Body())
	}
	if err != nil {
		return false, "malformed_credentials"
	}
	if !ok {
		return false, "wrong_response"
	}
	return true, ""
}

// challenge answers 401 with a fresh vector (TS 24.229 §5.4.1.2.1),
// fetching vectors with MAR when the cache has none for impi. resync is
// RAND‖AUTS for a resynchronisation MAR.
func (s *Registrar) challenge(ctx context.Context, t *sipproxy.Txn, impi, impu, alg string, stale bool, resync []byte) {
	want := ""
	if a, ok := algFor(schemeFor(alg)); ok {
		want = a
	}
	now := time.Now()
	var v *vector
	if resync == nil {
		v = s.auth.takeVector(impi, want, s.cfg.VectorLifetime, now)
	}
	if v == nil {
		scheme := schemeFor(alg)
		if resync != nil && scheme == SchemeUnknown {
			scheme = SchemeAKAv1
		}
		vs, err := s.mar(ctx, impi, impu, scheme, s.cfg.VectorsPerMAR, resync)
		if err != nil {
			s.respondHSSError(t, err, alg, impi)
			return
		}
		v = vs[0]
		s.auth.putVectors(impi, vs[1:])
	}
	realm := s.cfg.Domain
	c, err := s.auth.newChallenge(impi, impu, realm, v, now)
	if err != nil {
		s.log.Error("challenge", zap.Error(err))
		_ = t.Respond(500, "Server Internal Error")
		return
	}
	var h *digest.Header
	if v.alg == digest.AlgMD5 {
		h = digest.NewChallenge(realm, c.nonce, digest.AlgMD5, digest.QOPAuth)
	} else {
		h = digest.NewAKAChallenge(realm, c.nonce, v.alg, v.ik, v.ck)
	}
	if stale {
		h.Set("stale", "TRUE")
	}
	s.metrics.challenges.WithLabelValues(v.alg).Inc()
	_ = t.Respond(401, "Unauthorized", sip.NewHeader(digest.HeaderWWWAuthenticate, h.String()))
}

// resync handles credentials with auts (RFC 3310 §3.4, TS 33.203 §6.1.2):
// MAR with SIP-Authorization = RAND‖AUTS, then a new 401.
func (s *Registrar) resync(ctx context.Context, t *sipproxy.Txn, cred *digest.Header, impi, impu string) {
	rnd, _, err := digest.SplitAKANonce(cred.Nonce())
	if err != nil {
		_ = t.Respond(400, "Bad Request - auts with a nonce that is not an AKA nonce")
		return
	}
	auts, err := digest.DecodeAUTS(cred.AUTS())
	if err != nil {
		_ = t.Respond(400, "Bad Request - malformed auts")
		return
	}
	if c := s.auth.lookup(cred.Nonce()); c != nil {
		s.auth.consume(c)
	}
	s.auth.dropVectors(impi)
	s.metrics.auth.WithLabelValues("resync").Inc()
	s.log.Info("SQN resynchronisation", zap.String("impi", impi), zap.String("rand", base64.StdEncoding.EncodeToString(rnd)))
	s.challenge(ctx, t, impi, impu, cred.Algorithm(), false, append(rnd, auts...))
}
