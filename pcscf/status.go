package pcscf

import (
	"time"

	"github.com/imscore/imscore/pcscf/contacts"
)

// ContactStatus is one entry of /status/contacts.
type ContactStatus struct {
	AOR          string    `json:"aor"`
	Flow         string    `json:"flow"`
	IMPUs        []string  `json:"impus"`
	ServiceRoute []string  `json:"service_route"`
	Expires      time.Time `json:"expires"`
	ExpiresIn    int       `json:"expires_in"`
	SA           *SAStatus `json:"sa,omitempty"`
	RxSessions   []string  `json:"rx_sessions"`
	// SignallingLost: the PCRF reported the signalling bearer lost or
	// released (the Specific-Action); terminating INVITEs get 480.
	SignallingLost string `json:"signalling_lost,omitempty"`
}

// SAStatus shows an SA set without its keys.
type SAStatus struct {
	Alg, EAlg              string
	UEPortC, UEPortS       uint16
	UESPIC, UESPIS         uint32
	PCSCFPortC, PCSCFPortS uint16
	PCSCFSPIC, PCSCFSPIS   uint32
}

// Status is the JSON of /status/contacts (like Kamailio's ulpcscf.status).
type Status struct {
	IPsec    bool            `json:"ipsec"`
	Contacts []ContactStatus `json:"contacts"`
	IMPUs    int             `json:"impus"`
	SAs      int             `json:"sas"`
	Pending  int             `json:"pending_sas"`
	// ExpiredContacts: contacts removed by the expiry timer since start or
	// the last reset (POST /status/contacts/reset-expired).
	ExpiredContacts int64 `json:"expired_contacts"`
}

// Status returns the contact store's state.
func (s *PCSCF) Status() Status {
	st := Status{IPsec: s.ipsecOK, Contacts: []ContactStatus{}}
	impus := map[string]bool{}
	for _, c := range s.store.All() {
		st.Contacts = append(st.Contacts, contactStatus(c))
		for _, i := range c.IMPUs {
			impus[i] = true
		}
		if c.SA != nil {
			st.SAs++
		}
	}
	st.IMPUs = len(impus)
	st.ExpiredContacts = s.expired.Load()
	s.mu.Lock()
	st.Pending = len(s.pending)
	s.mu.Unlock()
	return st
}

func contactStatus(c *contacts.Contact) ContactStatus {
	cs := ContactStatus{AOR: c.AOR, Flow: c.Flow.String(), IMPUs: c.IMPUs, ServiceRoute: c.ServiceRoute,
		Expires: c.Expires, ExpiresIn: int(time.Until(c.Expires).Seconds()), RxSessions: append([]string{}, c.RxSessions...), SignallingLost: c.SignallingLost}
	if a := c.SA; a != nil {
		cs.SA = &SAStatus{Alg: a.Alg, EAlg: a.EAlg, UEPortC: a.UE.PortC, UEPortS: a.UE.PortS, UESPIC: a.UE.SPIC, UESPIS: a.UE.SPIS,
			PCSCFPortC: a.PCSCF.PortC, PCSCFPortS: a.PCSCF.PortS, PCSCFSPIC: a.PCSCF.SPIC, PCSCFSPIS: a.PCSCF.SPIS}
	}
	return cs
}

// ResetExpired sets the expired-contacts statistic of Status back to zero
// and returns the value it had. The Prometheus counter
// pcscf_expired_contacts_total is not reset (counters only grow).
func (s *PCSCF) ResetExpired() int64 { return s.expired.Swap(0) }
