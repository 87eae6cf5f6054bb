package pcscf

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// subscribeRegEvent subscribes to the reg event package (RFC 3680) of the
// contact's default IMPU at the S-CSCF (first Service-Route hop), TS
// 24.229 §5.2.3. Failures are logged only.
func (s *PCSCF) subscribeRegEvent(key string, c *contacts.Contact) {
	if len(c.ServiceRoute) == 0 {
		return
	}
	var hop, target sip.Uri
	if err := sip.ParseUri(c.ServiceRoute[0], &hop); err != nil {
		return
	}
	if err := sip.ParseUri(c.IMPUs[0], &target); err != nil || target.Scheme != "sip" {
		return
	}
	callID := sip.GenerateTagN(16) + "@" + s.cfg.SIPHost
	_, _ = s.store.Update(context.Background(), key, func(c *contacts.Contact) { c.RegSubscription = callID })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		req := sip.NewRequest(sip.SUBSCRIBE, target)
		from := s.proxy.URI("udp")
		from.UriParams = sip.NewParams()
		from.User = regEventUser
		fp := sip.NewParams()
		fp.Add("tag", sip.GenerateTagN(10))
		req.AppendHeader(&sip.FromHeader{Address: from, Params: fp})
		req.AppendHeader(&sip.ToHeader{Address: target, Params: sip.NewParams()})
		cid := sip.CallIDHeader(callID)
		req.AppendHeader(&cid)
		req.AppendHeader(&sip.ContactHeader{Address: from, Params: sip.NewParams()})
		req.AppendHeader(sip.NewHeader("Event", "reg"))
		req.AppendHeader(sip.NewHeader("Accept", "application/reginfo+xml"))
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(s.cfg.RegSubscribeExpires)))
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+from.String()+">"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr := "udp"
		if v, ok := hop.UriParams.Get("transport"); ok {
			tr = strings.ToLower(v)
		}
		nh := sip.Uri{Scheme: "sip", Host: hop.Host, Port: hop.Port}
		res, err := s.proxy.Do(ctx, req, sipproxy.Target{NextHop: &nh, Transport: tr})
		switch {
		case err != nil:
			s.log.Info("reg-event SUBSCRIBE failed (continuing without it)", zap.String("impu", target.String()), zap.Error(err))
		case res.StatusCode >= 300:
			s.log.Info("reg-event SUBSCRIBE refused (continuing without it)", zap.String("impu", target.String()), zap.Int("status", res.StatusCode))
		default:
			s.log.Info("subscribed to reg event", zap.String("impu", target.String()), zap.Int("status", res.StatusCode))
		}
	}()
}

// reginfo is the minimal RFC 3680 document model used here.
type reginfo struct {
	XMLName       xml.Name `xml:"reginfo"`
	Registrations []struct {
		AOR      string `xml:"aor,attr"`
		State    string `xml:"state,attr"`
		Contacts []struct {
			State string `xml:"state,attr"`
			Event string `xml:"event,attr"`
			URI   string `xml:"uri"`
		} `xml:"contact"`
	} `xml:"registration"`
}

// handleRegNotify removes contacts the S-CSCF reports terminated.
func (s *PCSCF) handleRegNotify(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	_ = t.Respond(sip.StatusOK, "OK")
	var doc reginfo
	if len(req.Body()) == 0 {
		return
	}
	if err := xml.Unmarshal(req.Body(), &doc); err != nil {
		s.log.Info("reg-event NOTIFY body not understood", zap.Error(err))
		return
	}
	for _, r := range doc.Registrations {
		for _, ct := range r.Contacts {
			if r.State != "terminated" && ct.State != "terminated" {
				continue
			}
			for _, c := range s.store.All() {
				if (ct.URI != "" && strings.EqualFold(strings.TrimSpace(ct.URI), c.AOR)) || (r.State == "terminated" && containsFold(c.IMPUs, r.AOR)) {
					s.log.Info("reg-event: contact terminated", zap.String("aor", c.AOR), zap.String("event", ct.Event))
					s.deregister(ctx, c.Key())
				}
			}
		}
		if r.State == "terminated" && len(r.Contacts) == 0 {
			for _, c := range s.store.ByIMPU(r.AOR) {
				s.deregister(ctx, c.Key())
			}
		}
	}
}
