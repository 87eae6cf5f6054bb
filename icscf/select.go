package icscf

import (
	"sort"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/cxclient"
)

// candidate is one S-CSCF to forward to.
type candidate struct {
	name  string  // as configured or as named by the HSS
	key   string  // uriKey of name
	route sip.Uri // Route entry (name with ;lr)
	hop   *sip.Uri
}

func (s *Server) candidateFor(name string, u sip.Uri) candidate {
	r := *u.Clone()
	r.User = ""
	r.Headers = nil
	if r.UriParams == nil {
		r.UriParams = sip.NewParams()
	}
	r.UriParams.Add("lr", "")
	return candidate{name: name, key: uriKey(u), route: r, hop: s.cfg.Resolve.NextHop(u)}
}

// configured returns the configured S-CSCF with the same name as u.
func (s *Server) configured(u sip.Uri) (SCSCF, bool) {
	k := uriKey(u)
	for _, c := range s.cfg.SCSCFs {
		if c.key == k {
			return c, true
		}
	}
	return SCSCF{}, false
}

// fromName turns a Server-Name of the HSS into a candidate; a configured
// S-CSCF of that name keeps its configured URI (transport parameter).
func (s *Server) fromName(name string) (candidate, bool) {
	u, err := parseSIPURI(name)
	if err != nil {
		return candidate{}, false
	}
	if c, ok := s.configured(u); ok {
		return s.candidateFor(c.Name, c.URI), true
	}
	return s.candidateFor(name, u), true
}

// selectSCSCF ranks S-CSCFs for an answer (TS 29.228 §6.1.1.2 / §6.1.4.2,
// TS 24.229 §5.3.1.2), leaving out those in exclude (keys):
//
//  1. the Server-Name of the answer, when present;
//  2. the S-CSCFs named inside Server-Capabilities, in the HSS's order;
//  3. configured S-CSCFs that have every mandatory capability, most
//     optional capabilities first, ties in configuration order; an answer
//     with neither Server-Name nor Server-Capabilities puts no requirement.
func (s *Server) selectSCSCF(a *cxclient.Assignment, exclude map[string]bool) []candidate {
	var out []candidate
	seen := map[string]bool{}
	add := func(c candidate) {
		if exclude[c.key] || seen[c.key] {
			return
		}
		seen[c.key] = true
		out = append(out, c)
	}
	caps := a.Capabilities
	if caps == nil {
		caps = &cxclient.Capabilities{}
	}
	if a.ServerName != "" {
		if c, ok := s.fromName(a.ServerName); ok {
			add(c)
		}
	}
	for _, n := range caps.ServerNames {
		if c, ok := s.fromName(n); ok {
			add(c)
		}
	}
	if a.ServerName != "" && a.Capabilities == nil {
		return out
	}
	type scored struct {
		sc    SCSCF
		score int
		idx   int
	}
	var capable []scored
	for i, sc := range s.cfg.SCSCFs {
		have := map[uint32]bool{}
		for _, c := range sc.Caps {
			have[c] = true
		}
		ok := true
		for _, m := range caps.Mandatory {
			if !have[m] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		score := 0
		for _, o := range caps.Optional {
			if have[o] {
				score++
			}
		}
		capable = append(capable, scored{sc, score, i})
	}
	sort.SliceStable(capable, func(i, j int) bool { return capable[i].score > capable[j].score })
	for _, c := range capable {
		add(s.candidateFor(c.sc.Name, c.sc.URI))
	}
	return out
}
