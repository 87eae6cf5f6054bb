package diameter

import (
	"testing"

	"github.com/fiorix/go-diameter/v4/diam/avp"
)

func TestDictionariesLoad(t *testing.T) {
	for _, apps := range [][]App{nil, {AppCx}, {AppSh}, {AppRx}, {AppCx, AppSh, AppRx}} {
		p, err := NewParser(apps...)
		if err != nil {
			t.Fatalf("NewParser(%v): %v", apps, err)
		}
		if got := len(p.Apps()); got != 1+len(apps) {
			t.Errorf("NewParser(%v): %d applications, want %d", apps, got, 1+len(apps))
		}
	}
	if _, err := NewParser(App(4)); err == nil {
		t.Error("NewParser(4): want error for an application without dictionary")
	}
}

func TestDictionaryContents(t *testing.T) {
	p, err := NewParser(AppCx, AppSh, AppRx)
	if err != nil {
		t.Fatal(err)
	}
	cmds := map[App][]uint32{
		AppCx: {CmdUserAuthorization, CmdServerAssignment, CmdLocationInfo, CmdMultimediaAuth, CmdRegistrationTermination, CmdPushProfile},
		AppSh: {CmdUserData, CmdProfileUpdate, CmdSubscribeNotifications, CmdPushNotification},
		AppRx: {CmdAA, CmdReAuth, CmdSessionTermination, CmdAbortSession},
		0:     {CmdCapabilitiesExchange, CmdDeviceWatchdog, CmdDisconnectPeer},
	}
	for app, cs := range cmds {
		for _, c := range cs {
			if _, err := p.FindCommand(uint32(app), c); err != nil {
				t.Errorf("%s command %d: %v", app, c, err)
			}
		}
	}
	avps := []struct {
		app  App
		id   AVPCode
		name string
	}{
		{AppCx, AVPVisitedNetworkIdentifier, "Visited-Network-Identifier"},
		{AppCx, AVPPublicIdentity, "Public-Identity"},
		{AppCx, AVPServerAssignmentType, "Server-Assignment-Type"},
		{AppCx, AVPSIPAuthDataItem, "SIP-Auth-Data-Item"},
		{AppCx, AVPDigestHA1, "Digest-HA1"},
		{AppCx, AVPSARFlags, "SAR-Flags"},
		{AppCx, AVPSessionID, "Session-Id"}, // inherited from base
		{AppSh, AVPUserIdentity, "User-Identity"},
		{AppSh, AVPShUserData, "User-Data"},
		{AppSh, AVPPublicIdentity, "Public-Identity"},
		{AppSh, AVPWildcardedIMPU, "Wildcarded-IMPU"},
		{AppSh, AVPDSAITag, "DSAI-Tag"},
		{AppRx, AVPMediaComponentDescription, "Media-Component-Description"},
		{AppRx, AVPFlowDescription, "Flow-Description"},
		{AppRx, AVPSubscriptionID, "Subscription-Id"},
		{AppRx, AVPReservationPriority, "Reservation-Priority"},
		{AppRx, AVPRxRequestType, "Rx-Request-Type"},
	}
	for _, a := range avps {
		d, err := p.FindAVPWithVendor(uint32(a.app), a.id.Code(), a.id.Vendor())
		if err != nil {
			t.Errorf("%s AVP %s: %v", a.app, a.id, err)
			continue
		}
		if d.Name != a.name || d.VendorID != a.id.Vendor() {
			t.Errorf("%s AVP %s: name %q vendor %d, want %q", a.app, a.id, d.Name, d.VendorID, a.name)
		}
	}
	if e, err := p.Enum(uint32(AppCx), AVPServerAssignmentType.Code(), 14); err != nil || e.Name != "RESTORATION" {
		t.Errorf("Server-Assignment-Type 14 = %v, %v", e, err)
	}
	if e, err := p.Enum(uint32(AppCx), AVPUserAuthorizationType.Code(), 2); err != nil || e.Name != "REGISTRATION_AND_CAPABILITIES" {
		t.Errorf("User-Authorization-Type 2 = %v, %v", e, err)
	}
	// Rule names inside every dictionary must resolve to defined AVPs.
	for _, app := range p.Apps() {
		for _, c := range app.Command {
			for _, r := range append(c.Request.Rule, c.Answer.Rule...) {
				if _, err := p.FindAVP(app.ID, r.AVP); err != nil {
					t.Errorf("%s %s: rule for undefined AVP %q", app.Name, c.Name, r.AVP)
				}
			}
		}
		for _, a := range app.AVP {
			for _, r := range a.Data.Rule {
				if _, err := p.FindAVP(app.ID, r.AVP); err != nil {
					t.Errorf("%s %s: grouped rule for undefined AVP %q", app.Name, a.Name, r.AVP)
				}
			}
		}
	}
}

func TestFlags(t *testing.T) {
	if f := AVPPublicIdentity.Flags(); f != avp.Mbit|avp.Vbit {
		t.Errorf("Public-Identity flags %#x", f)
	}
	if f := AVPWildcardedPublicIdentity.Flags(); f != avp.Vbit {
		t.Errorf("Wildcarded-Public-Identity flags %#x", f)
	}
	if f := AVPProductName.Flags(); f != 0 {
		t.Errorf("Product-Name flags %#x", f)
	}
	if f := AVPSessionID.Flags(); f != avp.Mbit {
		t.Errorf("Session-Id flags %#x", f)
	}
}
