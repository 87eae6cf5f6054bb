package icscf

// Concealing which identities exist (docs/icscf.md, "Unknown users"): a
// REGISTER of an identity the HSS does not know (UAA 5001, or 5002 for an
// IMPU with another user's IMPI) is answered the way the S-CSCF answers a
// known user — a 401 challenge, then 403 "Authentication failed" for the
// response — after about as long as the S-CSCF's answers take (RFC 3261
// §22: a registrar that does not want to reveal its users challenges
// every request). Failed decoy answers count against the IMPI like wrong
// passwords do at the S-CSCF.

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/authguard"
	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// decoyNonceLifetime is how long a decoy nonce is remembered, as the
// S-CSCF's default --nonce-lifetime.
const decoyNonceLifetime = 60 * time.Second

// maxDecoyNonces bounds the remembered decoy nonces.
const maxDecoyNonces = 100_000

// concealer holds the decoy nonces and the latencies decoy answers copy.
type concealer struct {
	mu     sync.Mutex
	nonces map[string]time.Time // decoy nonce → issued
	swept  time.Time
	lat401 latencies // REGISTER → 401 relayed from an S-CSCF
	lat403 latencies // challenge answer → 403 relayed from an S-CSCF
	guard  *authguard.Guard
}

// latencies is a ring of recent answer times; decoy answers wait for a
// time drawn from it, so that their distribution follows the real one.
type latencies struct {
	mu   sync.Mutex
	ring [128]time.Duration
	n    int
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.mu.Unlock()
}

// sample returns one recent latency, 0 when none is known yet.
func (l *latencies) sample() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(l.n, len(l.ring))
	if n == 0 {
		return 0
	}
	return l.ring[rand.IntN(n)]
}

func newConcealer(g *authguard.Guard) *concealer {
	return &concealer{nonces: map[string]time.Time{}, guard: g}
}

// issue remembers a new decoy nonce.
func (c *concealer) issue(nonce string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nonces) >= maxDecoyNonces && now.Sub(c.swept) > time.Second {
		c.swept = now
		for n, at := range c.nonces {
			if now.Sub(at) > decoyNonceLifetime {
				delete(c.nonces, n)
			}
		}
	}
	if len(c.nonces) < maxDecoyNonces {
		c.nonces[nonce] = now
	}
}

// answered reports whether nonce is an unexpired decoy nonce, forgetting it
// (single use, as the S-CSCF's nonces).
func (c *concealer) answered(nonce string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.nonces[nonce]
	delete(c.nonces, nonce)
	return ok && now.Sub(at) <= decoyNonceLifetime
}

// observe records how long a REGISTER answered by an S-CSCF took, for
// the decoys: a 401, or a 403 to a challenge answer.
func (c *concealer) observe(req *sip.Request, res *sip.Response, took time.Duration) {
	switch {
	case res.StatusCode == 401:
		c.lat401.add(took)
	case res.StatusCode == 403 && answersChallenge(req):
		c.lat403.add(took)
	}
}

// answersChallenge reports whether req carries digest credentials with a
// response (an answer to a 401).
func answersChallenge(req *sip.Request) bool {
	cred := credentials(req)
	return cred != nil && cred.Nonce() != "" && cred.Response() != ""
}

// credentials returns the first digest Authorization of req, nil if none.
func credentials(req *sip.Request) *digest.Header {
	hs, err := digest.GetAll(req, digest.HeaderAuthorization)
	if err != nil || len(hs) == 0 {
		return nil
	}
	return hs[0]
}

// conceal answers the REGISTER of an identity the HSS does not know,
// started at start, as an S-CSCF answers a known one: 403 "Forbidden -
// Authentication throttled" with Retry-After when the IMPI is throttled; 403 "Forbidden - Authentication
// failed" to the answer of a decoy challenge; otherwise a decoy 401 (the
// algorithm the UE named, else AKAv1-MD5; with random ik/ck for the
// P-CSCF, as TS 24.229 §5.4.1.2.1 challenges carry).
func (s *Server) conceal(ctx context.Context, t *sipproxy.Txn, impi string, start time.Time) int {
	req := t.Request()
	now := time.Now()
	if wait, ok := s.decoy.guard.Check(impi); !ok {
		s.metrics.concealed.WithLabelValues("throttled").Inc()
		return s.relay(t, t.NewResponse(403, "Forbidden - Authentication throttled",
			sip.NewHeader("Retry-After", strconv.Itoa(authguard.RetryAfter(wait)))))
	}
	cred := credentials(req)
	if cred != nil && cred.Response() != "" && s.decoy.answered(cred.Nonce(), now) {
		s.decoy.guard.Failed(impi)
		s.waitLike(ctx, &s.decoy.lat403, start)
		s.metrics.concealed.WithLabelValues("403").Inc()
		return s.relay(t, t.NewResponse(403, "Forbidden - Authentication failed"))
	}
	alg := digest.AlgAKAv1
	if cred != nil {
		switch a := cred.Algorithm(); {
		case strings.EqualFold(a, digest.AlgMD5):
			alg = digest.AlgMD5
		case strings.EqualFold(a, digest.AlgAKAv2):
			alg = digest.AlgAKAv2
		}
	}
	var h *digest.Header
	var nonce string
	if alg == digest.AlgMD5 {
		nonce = randomB64(24) // as the S-CSCF's MD5 nonces
		h = digest.NewChallenge(s.cfg.Domain, nonce, digest.AlgMD5, digest.QOPAuth)
	} else {
		nonce = randomB64(32) // RAND ‖ AUTN
		h = digest.NewAKAChallenge(s.cfg.Domain, nonce, alg, randomBytes(16), randomBytes(16))
	}
	s.decoy.issue(nonce, now)
	s.waitLike(ctx, &s.decoy.lat401, start)
	s.metrics.concealed.WithLabelValues("401").Inc()
	s.log.Debug("REGISTER of an identity the HSS does not know: decoy challenge", zap.String("impi", impi))
	return s.relay(t, t.NewResponse(401, "Unauthorized", sip.NewHeader(digest.HeaderWWWAuthenticate, h.String())))
}

// waitLike waits until a latency drawn from l has passed since start (at
// most 2 s), so that a decoy answer takes as long as a real one.
func (s *Server) waitLike(ctx context.Context, l *latencies, start time.Time) {
	d := min(l.sample(), 2*time.Second) - time.Since(start)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return b
}

func randomB64(n int) string { return base64.StdEncoding.EncodeToString(randomBytes(n)) }

// unknownIdentity reports a UAA saying the HSS does not know the identity
// (5001) or that the IMPI is not the IMPU's (5002): both tell a prober
// which identities exist.
func unknownIdentity(e *cxclient.Error) bool {
	return e.Err == nil && e.Experimental &&
		(e.Code == diameter.DiameterErrorUserUnknown || e.Code == diameter.DiameterErrorIdentitiesDontMatch)
}
