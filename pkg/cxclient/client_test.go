package cxclient_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
)

const realm = "ims.test"

// pair starts an HSS-side node answering Cx with h and a connected client.
func pair(t *testing.T, h func(req *diam.Message, hss *diameter.Node) (*diam.Message, error), observe func(string, time.Duration, string, bool)) *cxclient.Client {
	t.Helper()
	hss, err := diameter.New(diameter.Config{OriginHost: "hss." + realm, OriginRealm: realm, Apps: []diameter.App{diameter.AppCx}, AcceptAnyPeer: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []uint32{diameter.CmdUserAuthorization, diameter.CmdLocationInfo, diameter.CmdMultimediaAuth, diameter.CmdServerAssignment} {
		hss.Handle(cmd, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
			return h(req, hss)
		})
	}
	addr, err := hss.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cscf, err := diameter.New(diameter.Config{OriginHost: "scscf." + realm, OriginRealm: realm, Apps: []diameter.App{diameter.AppCx}, AllowedPeers: []string{"hss." + realm}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cscf.Close(ctx)
		hss.Close(ctx)
	})
	p, err := cscf.Connect(context.Background(), diameter.PeerConfig{Addr: addr.String(), Host: "hss." + realm, Realm: realm})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := cxclient.New(cxclient.Config{Node: cscf, Realm: realm, HSSHost: "hss." + realm, ServerName: "sip:scscf." + realm, Timeout: 300 * time.Millisecond, Observe: observe})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestErrorShapes: one error type for every way a Cx exchange fails, with
// the metric label each CSCF records.
func TestErrorShapes(t *testing.T) {
	var labels []string
	c := pair(t, func(req *diam.Message, hss *diameter.Node) (*diam.Message, error) {
		switch diameter.String(req, diameter.AVPPublicIdentity) {
		case "sip:unknown@" + realm:
			return nil, &diameter.ResultError{Code: diameter.DiameterErrorUserUnknown, Experimental: true}
		case "sip:slow@" + realm:
			time.Sleep(time.Second)
		case "sip:noresult@" + realm:
			a := diam.NewMessage(req.Header.CommandCode, 0, req.Header.ApplicationID, req.Header.HopByHopID, req.Header.EndToEndID, nil)
			a.AddAVP(diameter.Find(req, diameter.AVPSessionID))
			a.AddAVP(diameter.NewAVP(diameter.AVPOriginHost, datatype.DiameterIdentity("hss."+realm)))
			a.AddAVP(diameter.NewAVP(diameter.AVPOriginRealm, datatype.DiameterIdentity(realm)))
			return a, nil
		}
		a := hss.AnswerExperimental(req, diameter.DiameterFirstRegistration)
		a.AddAVP(diameter.Grouped(diameter.AVPServerCapabilities,
			diameter.NewAVP(diameter.AVPMandatoryCapability, datatype.Unsigned32(7)),
			diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String("sip:s1."+realm))))
		return a, nil
	}, func(cmd string, _ time.Duration, label string, ok bool) { labels = append(labels, cmd+":"+label) })
	ctx := context.Background()

	a, err := c.UAR(ctx, "sip:alice@"+realm, "alice@"+realm, realm, diameter.UATRegistration)
	if err != nil || a.Code != diameter.DiameterFirstRegistration || !a.Experimental || len(a.Mandatory()) != 1 || a.Capabilities.ServerNames[0] != "sip:s1."+realm {
		t.Fatalf("UAR: %+v, %v", a, err)
	}
	_, err = c.LIR(ctx, "sip:unknown@"+realm, false, false)
	ce, ok := cxclient.AsError(err)
	if !ok || !ce.Answered() || !ce.Is3GPP(diameter.DiameterErrorUserUnknown) || ce.TimedOut() || ce.Label() != "e5001" {
		t.Errorf("LIR unknown: %#v", err)
	}
	_, err = c.SAR(ctx, "", "sip:slow@"+realm, diameter.SATUnregisteredUser, false)
	if ce, ok := cxclient.AsError(err); !ok || ce.Answered() || !ce.TimedOut() || !errors.Is(err, context.DeadlineExceeded) || ce.Label() != "timeout" {
		t.Errorf("SAR slow: %#v", err)
	}
	_, err = c.MAR(ctx, "x@"+realm, "sip:noresult@"+realm, "Unknown", 1, nil)
	if ce, ok := cxclient.AsError(err); !ok || !ce.Answered() || ce.Label() != "no_result" || ce.Code != diameter.DiameterUnableToComply {
		t.Errorf("MAR without result: %#v", err)
	}
	want := []string{"UAR:e2001", "LIR:e5001", "SAR:timeout", "MAR:no_result"}
	if len(labels) != len(want) {
		t.Fatalf("observed %v, want %v", labels, want)
	}
	for i := range want {
		if labels[i] != want[i] {
			t.Errorf("observed %v, want %v", labels, want)
			break
		}
	}
}
