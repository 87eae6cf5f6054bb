package registrar

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"sync"
	"time"

	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/scscf/binding"
)

// challenge is one 401 sent: the vector it used and the nonce that names it.
type challenge struct {
	nonce    string
	impi     string
	impu     string
	realm    string
	v        *vector
	created  time.Time
	lastNC   uint64
	timedOut bool // SAR AUTHENTICATION_TIMEOUT already sent
}

// authState caches vectors per IMPI (several per MAR, each used once) and
// the outstanding challenges by nonce (TS 33.203 §6.1, RFC 3310).
type authState struct {
	mu         sync.Mutex
	vectors    map[string][]*vector  // impi -> unused vectors, oldest first
	challenges map[string]*challenge // nonce -> challenge
	latest     map[string]*challenge // impi + "\x00" + impu -> newest challenge
}

func newAuthState() *authState {
	return &authState{vectors: map[string][]*vector{}, challenges: map[string]*challenge{}, latest: map[string]*challenge{}}
}

// takeVector pops a cached vector for impi whose algorithm suits want
// ("" = any), dropping ones older than maxAge.
func (a *authState) takeVector(impi, want string, maxAge time.Duration, now time.Time) *vector {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.vectors[impi]
	var keep []*vector
	var got *vector
	for _, v := range list {
		if now.Sub(v.fetched) > maxAge {
			continue
		}
		if got == nil && (want == "" || v.alg == want) {
			got = v
			continue
		}
		keep = append(keep, v)
	}
	if len(keep) == 0 {
		delete(a.vectors, impi)
	} else {
		a.vectors[impi] = keep
	}
	return got
}

func (a *authState) putVectors(impi string, vs []*vector) {
	if len(vs) == 0 {
		return
	}
	a.mu.Lock()
	a.vectors[impi] = append(a.vectors[impi], vs...)
	a.mu.Unlock()
}

// dropVectors forgets the cached vectors of impi (after a resync their SQNs
// are stale).
func (a *authState) dropVectors(impi string) {
	a.mu.Lock()
	delete(a.vectors, impi)
	a.mu.Unlock()
}

// newChallenge records a challenge for v and returns it with its nonce:
// base64(RAND‖AUTN) for AKA (RFC 3310 §3.2), 24 random bytes in base64 for
// MD5.
func (a *authState) newChallenge(impi, impu, realm string, v *vector, now time.Time) (*challenge, error) {
	var nonce string
	if v.alg == digest.AlgMD5 {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		nonce = base64.StdEncoding.EncodeToString(b)
	} else {
		n, err := digest.JoinAKANonce(v.sipAuth[:16], v.sipAuth[16:32], nil)
		if err != nil {
			return nil, err
		}
		nonce = n
	}
	c := &challenge{nonce: nonce, impi: impi, impu: impu, realm: realm, v: v, created: now}
	a.mu.Lock()
	a.challenges[nonce] = c
	a.latest[impi+"\x00"+binding.CanonURI(impu)] = c
	a.mu.Unlock()
	return c, nil
}

// lookup returns the challenge of nonce, or nil.
func (a *authState) lookup(nonce string) *challenge {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.challenges[nonce]
}

// consume removes the challenge (single use), reporting whether it was
// still there (two concurrent answers: only one wins).
func (a *authState) consume(c *challenge) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.challenges[c.nonce] != c {
		return false
	}
	delete(a.challenges, c.nonce)
	k := c.impi + "\x00" + binding.CanonURI(c.impu)
	if a.latest[k] == c {
		delete(a.latest, k)
	}
	return true
}

// checkNC records nc (8 hex digits) for c and reports whether it is
// greater than every nc seen with this nonce (RFC 2617 §3.2.2).
func (a *authState) checkNC(c *challenge, nc string) bool {
	n, err := strconv.ParseUint(nc, 16, 32)
	if err != nil || len(nc) != 8 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n <= c.lastNC {
		return false
	}
	c.lastNC = n
	return true
}

// sweep drops expired challenges and vectors and returns the challenges
// that just passed the challenge timeout unanswered and are still the
// newest for their IMPI/IMPU (SAR AUTHENTICATION_TIMEOUT is due for them).
func (a *authState) sweep(now time.Time, timeout, lifetime, vectorLife time.Duration) (due []*challenge) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Runs every second over every open challenge and cached vector: the
	// key and the kept list are built only for what changes.
	for n, c := range a.challenges {
		age := now.Sub(c.created)
		timesOut, ends := age >= timeout && !c.timedOut, age >= lifetime && age >= timeout
		if !timesOut && !ends {
			continue
		}
		k := c.impi + "\x00" + binding.CanonURI(c.impu)
		if timesOut {
			c.timedOut = true
			if a.latest[k] == c {
				due = append(due, c)
			}
		}
		if ends {
			delete(a.challenges, n)
			if a.latest[k] == c {
				delete(a.latest, k)
			}
		}
	}
	for impi, list := range a.vectors {
		stale := 0
		for _, v := range list {
			if now.Sub(v.fetched) > vectorLife {
				stale++
			}
		}
		switch {
		case stale == 0:
		case stale == len(list):
			delete(a.vectors, impi)
		default:
			keep := make([]*vector, 0, len(list)-stale)
			for _, v := range list {
				if now.Sub(v.fetched) <= vectorLife {
					keep = append(keep, v)
				}
			}
			a.vectors[impi] = keep
		}
	}
	return due
}

func (a *authState) counts() (vectors, challenges int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.vectors {
		vectors += len(l)
	}
	return vectors, len(a.challenges)
}
