// Package ifc evaluates initial filter criteria (iFC), the S-CSCF's
// decision which application servers an initial request visits (TS 23.218
// §6, TS 29.228 Annex B.2.2 and Annex C, regular expressions per Annex F).
// The iFC model is pkg/userdata; the request side is Request, built from a
// sipgo request with FromSIP.
//
// # Service point triggers
//
//   - RequestURI: the regular expression matches the Request-URI, or,
//     for a telephone number (a tel URI with visual separators, a SIP URI
//     with user=phone), its global tel URI form (pkg/imsuri.Canonical).
//   - Method: the method equals the SPT's method, case-sensitively
//     (RFC 3261 §7.1). With RegistrationTypes and Method REGISTER, the
//     request's RegistrationType must also be in the list (TS 29.228
//     Annex B.2.2); an empty list matches every REGISTER.
//   - SIPHeader: a header with that name is present (names compare
//     case-insensitively, compact forms equal long forms) and, when
//     Content is set, at least one instance's value matches Content.
//   - SessionCase: equality with Request.SessionCase.
//   - SessionDescription: an SDP line of type Line is present and, when
//     Content is set, at least one such line's value (the text after
//     "x=") matches Content.
//
// ConditionNegated inverts an SPT's result.
//
// # Regular expressions
//
// TS 29.228 Annex F refers to POSIX extended regular expressions, whose
// matching (regexec) succeeds when the expression matches any part of the
// subject. This package does the same: patterns are not anchored, so
// "mmtel" matches a header value containing it and "^sip:.*@ims\.example$"
// must be written with anchors to match a whole URI. Patterns are compiled
// with Go's regexp package (RE2 syntax, a superset of the ERE syntax in
// practical use, and the same compiler pkg/userdata validates with); the
// surrounding whitespace of a pattern is ignored. Compiled patterns are
// cached. A pattern that does not compile makes its iFC never match and is
// reported as a *RegexpError; nothing panics.
//
// # Trigger points
//
// ConditionTypeCNF=1 is conjunctive normal form: every group must hold an
// SPT that matches (AND of ORs). ConditionTypeCNF=0 is disjunctive normal
// form: some group must have all its SPTs match (OR of ANDs). An SPT listed
// in several groups counts in each; an SPT without a group takes no part.
// An iFC without TriggerPoint always matches; a TriggerPoint without any
// group never matches (Validate in pkg/userdata rejects both empty SPT
// lists and SPTs without a group).
//
// # Order
//
// iFCs are tried in ascending Priority (TS 23.218 §6). After an AS
// returns the request, the S-CSCF resumes with the iFCs whose Priority is
// strictly greater than the last one used (see Evaluator.Next). Equal
// priorities, which pkg/userdata rejects, keep slice order and are
// skipped together on resumption.
package ifc

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/imscore/imscore/pkg/imsuri"
	"github.com/imscore/imscore/pkg/userdata"
)

// RegexpError reports an SPT whose regular expression does not compile; the
// iFC holding it does not match.
type RegexpError struct {
	Priority int    // Priority of the iFC
	SPT      int    // index of the SPT in TriggerPoint.SPTs, from 0
	Field    string // "RequestURI", "SIPHeader/Content" or "SessionDescription/Content"
	Pattern  string // the pattern as given
	Err      error  // the compiler's error
}

func (e *RegexpError) Error() string {
	return fmt.Sprintf("ifc: iFC priority %d SPT[%d] %s %q: %v", e.Priority, e.SPT, e.Field, e.Pattern, e.Err)
}

func (e *RegexpError) Unwrap() error { return e.Err }

// ErrInvalidTrigger is wrapped by the errors for a TriggerPoint that
// cannot match: no SPT with a Group, or an SPT without any condition.
var ErrInvalidTrigger = errors.New("ifc: invalid trigger point")

// maxCache bounds the regular-expression cache; when it is full it starts
// over (patterns come from a few service profiles, so this is rare).
const maxCache = 4096

type compiled struct {
	re  *regexp.Regexp
	err error
}

// Evaluator evaluates iFCs with a cache of compiled regular expressions.
// It is safe for concurrent use; the zero value is ready to use and drops
// errors.
type Evaluator struct {
	// OnError, when set, receives every error met while evaluating (a
	// *RegexpError or one wrapping ErrInvalidTrigger). It may be called
	// concurrently.
	OnError func(error)

	mu    sync.RWMutex
	cache map[string]compiled
}

// NewEvaluator returns an Evaluator that reports errors to onError (which
// may be nil).
func NewEvaluator(onError func(error)) *Evaluator {
	return &Evaluator{OnError: onError}
}

var defaultEvaluator Evaluator

// Evaluate returns the first iFC, in ascending Priority, whose Priority is
// strictly greater than after and which matches req. Pass math.MinInt (or
// any value below every priority, e.g. -1 for the usual non-negative
// priorities) to start from the beginning. The pointer aliases ifcs. It
// uses a shared Evaluator that drops errors; use an Evaluator with OnError,
// or Check, to see them.
func Evaluate(ifcs []userdata.InitialFilterCriteria, req Request, after int) (*userdata.InitialFilterCriteria, bool) {
	return defaultEvaluator.Next(ifcs, req, after)
}

// Check compiles every regular expression of ifcs and checks that every
// TriggerPoint can be evaluated, returning all problems joined (nil when
// there are none). The S-CSCF can call it when it receives a profile.
func Check(ifcs []userdata.InitialFilterCriteria) error {
	return defaultEvaluator.Check(ifcs)
}

// Check is the package-level Check using e's cache; it does not call
// OnError.
func (e *Evaluator) Check(ifcs []userdata.InitialFilterCriteria) error {
	var errs []error
	for i := range ifcs {
		f := &ifcs[i]
		tp := f.TriggerPoint
		if tp == nil {
			continue
		}
		if !hasGroup(tp) {
			errs = append(errs, triggerError(f.Priority, "no SPT belongs to a Group"))
		}
		for j := range tp.SPTs {
			s := &tp.SPTs[j]
			field, pat, ok := sptPattern(s)
			if !ok {
				if !hasCondition(s) {
					errs = append(errs, triggerError(f.Priority, fmt.Sprintf("SPT[%d] has no condition", j)))
				}
				continue
			}
			if _, err := e.regexp(pat); err != nil {
				errs = append(errs, &RegexpError{Priority: f.Priority, SPT: j, Field: field, Pattern: pat, Err: err})
			}
		}
	}
	return errors.Join(errs...)
}

// Next returns the first iFC, in ascending Priority, with Priority strictly
// greater than after that matches req (TS 23.218 §6: after an AS returns
// the request, evaluation resumes after the iFC that sent it there). The
// pointer aliases ifcs. Errors go to OnError; an iFC with an error does not
// match.
func (e *Evaluator) Next(ifcs []userdata.InitialFilterCriteria, req Request, after int) (*userdata.InitialFilterCriteria, bool) {
	for f := range e.All(ifcs, req, after) {
		return f, true
	}
	return nil, false
}

// All yields, in ascending Priority, every iFC with Priority strictly
// greater than after that matches req. Each iFC is evaluated when the
// iteration reaches it. Errors go to OnError.
func (e *Evaluator) All(ifcs []userdata.InitialFilterCriteria, req Request, after int) iter.Seq[*userdata.InitialFilterCriteria] {
	return func(yield func(*userdata.InitialFilterCriteria) bool) {
		if slices.IsSortedFunc(ifcs, func(a, b userdata.InitialFilterCriteria) int { return cmpInt(a.Priority, b.Priority) }) {
			for i := range ifcs {
				f := &ifcs[i]
				if f.Priority <= after || !e.matchReport(f, &req) {
					continue
				}
				if !yield(f) {
					return
				}
			}
			return
		}
		// Unsorted input: walk in (Priority, index) order without
		// allocating.
		curP, curI := after, math.MaxInt
		for {
			next := -1
			for i := range ifcs {
				p := ifcs[i].Priority
				if p < curP || (p == curP && i <= curI) || p <= after {
					continue
				}
				if next < 0 || p < ifcs[next].Priority {
					next = i
				}
			}
			if next < 0 {
				return
			}
			curP, curI = ifcs[next].Priority, next
			f := &ifcs[next]
			if e.matchReport(f, &req) && !yield(f) {
				return
			}
		}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *Evaluator) matchReport(f *userdata.InitialFilterCriteria, req *Request) bool {
	ok, err := e.match(f, req)
	if err != nil && e.OnError != nil {
		e.OnError(err)
	}
	return ok && err == nil
}

// Match reports whether ifc applies to req: its ProfilePartIndicator fits
// req.Registered and its TriggerPoint matches. An error (a *RegexpError or
// one wrapping ErrInvalidTrigger) comes with false. Match does not call
// OnError.
func (e *Evaluator) Match(ifc *userdata.InitialFilterCriteria, req Request) (bool, error) {
	if ifc == nil {
		return false, nil
	}
	ok, err := e.match(ifc, &req)
	return ok && err == nil, err
}

// Match is Evaluator.Match on a shared Evaluator.
func Match(ifc *userdata.InitialFilterCriteria, req Request) (bool, error) {
	return defaultEvaluator.Match(ifc, req)
}

// maxSPTsOnStack is how many SPT results are kept without allocating.
const maxSPTsOnStack = 32

func (e *Evaluator) match(f *userdata.InitialFilterCriteria, req *Request) (bool, error) {
	if ppi := f.ProfilePartIndicator; ppi != nil {
		switch *ppi {
		case userdata.ProfilePartRegistered:
			if !req.Registered {
				return false, nil
			}
		case userdata.ProfilePartUnregistered:
			if req.Registered {
				return false, nil
			}
		default:
			return false, nil
		}
	}
	tp := f.TriggerPoint
	if tp == nil {
		return true, nil
	}
	if !hasGroup(tp) {
		return false, triggerError(f.Priority, "no SPT belongs to a Group")
	}
	// Evaluate each SPT once; an error anywhere makes the iFC fail, so
	// the result does not depend on short-circuit order.
	var buf [maxSPTsOnStack]bool
	res := buf[:0]
	if len(tp.SPTs) > maxSPTsOnStack {
		res = make([]bool, 0, len(tp.SPTs))
	}
	for j := range tp.SPTs {
		ok, err := e.spt(&tp.SPTs[j], req)
		if err != nil {
			var re *RegexpError
			if errors.As(err, &re) {
				re.Priority, re.SPT = f.Priority, j
				return false, re
			}
			return false, triggerError(f.Priority, fmt.Sprintf("SPT[%d]: %v", j, err))
		}
		res = append(res, ok)
	}
	cnf := bool(tp.ConditionTypeCNF)
	// CNF: AND over groups of OR; DNF: OR over groups of AND.
	for j := range tp.SPTs {
		for k, g := range tp.SPTs[j].Groups {
			if seenGroup(tp.SPTs, j, k, g) {
				continue
			}
			v := groupValue(tp.SPTs, res, g, cnf)
			if cnf && !v {
				return false, nil
			}
			if !cnf && v {
				return true, nil
			}
		}
	}
	return cnf, nil
}

// seenGroup reports whether group g appears before position (j, k).
func seenGroup(spts []userdata.SPT, j, k int, g uint32) bool {
	for jj := 0; jj <= j; jj++ {
		gs := spts[jj].Groups
		if jj == j {
			gs = gs[:k]
		}
		if slices.Contains(gs, g) {
			return true
		}
	}
	return false
}

// groupValue is the OR (cnf) or AND (dnf) of the SPTs belonging to g.
func groupValue(spts []userdata.SPT, res []bool, g uint32, cnf bool) bool {
	for j := range spts {
		if !slices.Contains(spts[j].Groups, g) {
			continue
		}
		if cnf && res[j] {
			return true
		}
		if !cnf && !res[j] {
			return false
		}
	}
	return !cnf
}

func hasGroup(tp *userdata.TriggerPoint) bool {
	for i := range tp.SPTs {
		if len(tp.SPTs[i].Groups) > 0 {
			return true
		}
	}
	return false
}

func hasCondition(s *userdata.SPT) bool {
	return s.RequestURI != nil || s.Method != nil || s.SIPHeader != nil || s.SessionCase != nil || s.SessionDescription != nil
}

func triggerError(prio int, msg string) error {
	return fmt.Errorf("%w: iFC priority %d: %s", ErrInvalidTrigger, prio, msg)
}

// sptPattern returns the regular expression an SPT uses, if any.
func sptPattern(s *userdata.SPT) (field, pattern string, ok bool) {
	switch {
	case s.RequestURI != nil:
		return "RequestURI", *s.RequestURI, true
	case s.SIPHeader != nil && s.SIPHeader.Content != nil:
		return "SIPHeader/Content", *s.SIPHeader.Content, true
	case s.SessionDescription != nil && s.SessionDescription.Content != nil:
		return "SessionDescription/Content", *s.SessionDescription.Content, true
	}
	return "", "", false
}

// spt evaluates one SPT, negation included. The first condition element
// set is used (pkg/userdata guarantees there is exactly one).
func (e *Evaluator) spt(s *userdata.SPT, req *Request) (bool, error) {
	var ok bool
	switch {
	case s.RequestURI != nil:
		re, err := e.regexp(*s.RequestURI)
		if err != nil {
			return false, &RegexpError{Field: "RequestURI", Pattern: *s.RequestURI, Err: err}
		}
		ok = re.MatchString(req.RequestURI)
		if !ok {
			// A telephone number matches in its tel URI form too:
			// sip:+1-555-0100@home;user=phone is tel:+15550100
			// (RFC 3261 §19.1.6, TS 24.229 §5.4.3.3, pkg/imsuri).
			if c := imsuri.Canonical(req.RequestURI); c != req.RequestURI {
				ok = re.MatchString(c)
			}
		}
	case s.Method != nil:
		m := strings.TrimSpace(*s.Method)
		ok = req.Method == m
		if ok && m == "REGISTER" && len(s.RegistrationTypes) > 0 {
			ok = slices.Contains(s.RegistrationTypes, req.RegistrationType)
		}
	case s.SIPHeader != nil:
		var re *regexp.Regexp
		if c := s.SIPHeader.Content; c != nil {
			var err error
			if re, err = e.regexp(*c); err != nil {
				return false, &RegexpError{Field: "SIPHeader/Content", Pattern: *c, Err: err}
			}
		}
		for _, h := range req.Headers {
			if sameHeader(h.Name, s.SIPHeader.Header) && (re == nil || re.MatchString(h.Value)) {
				ok = true
				break
			}
		}
	case s.SessionCase != nil:
		ok = req.SessionCase == *s.SessionCase
	case s.SessionDescription != nil:
		var re *regexp.Regexp
		if c := s.SessionDescription.Content; c != nil {
			var err error
			if re, err = e.regexp(*c); err != nil {
				return false, &RegexpError{Field: "SessionDescription/Content", Pattern: *c, Err: err}
			}
		}
		line := strings.TrimSpace(s.SessionDescription.Line)
		for _, l := range req.SDP {
			if strings.EqualFold(l.Type, line) && (re == nil || re.MatchString(l.Value)) {
				ok = true
				break
			}
		}
	default:
		return false, errors.New("no condition element")
	}
	return ok != bool(s.ConditionNegated), nil
}

// regexp returns the compiled pattern (surrounding whitespace trimmed) from
// the cache, compiling it on first use.
func (e *Evaluator) regexp(pattern string) (*regexp.Regexp, error) {
	e.mu.RLock()
	c, ok := e.cache[pattern]
	e.mu.RUnlock()
	if ok {
		return c.re, c.err
	}
	re, err := regexp.Compile(strings.TrimSpace(pattern))
	c = compiled{re: re, err: err}
	e.mu.Lock()
	if e.cache == nil || len(e.cache) >= maxCache {
		e.cache = make(map[string]compiled)
	}
	e.cache[pattern] = c
	e.mu.Unlock()
	return c.re, c.err
}
