package diameter

import (
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// TestFindIsFirstOfFindIn: Find returns what FindIn lists first, also
// when the first grouped AVP on the path lacks the child and a later one
// has it, and nil when nothing matches.
func TestFindIsFirstOfFindIn(t *testing.T) {
	m := diam.NewRequest(diam.CapabilitiesExchange, 0, nil)
	m.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity("hss.ims.test")))
	m.AddAVP(Grouped(AVPSIPAuthDataItem, NewAVP(AVPSIPItemNumber, datatype.Unsigned32(1))))
	m.AddAVP(Grouped(AVPSIPAuthDataItem, NewAVP(AVPSIPItemNumber, datatype.Unsigned32(2)),
		NewAVP(AVPSIPAuthenticate, datatype.OctetString("second"))))
	m.AddAVP(Grouped(AVPSIPAuthDataItem, NewAVP(AVPSIPAuthenticate, datatype.OctetString("third"))))
	for _, path := range [][]AVPCode{
		{AVPOriginHost},
		{AVPSIPAuthDataItem},
		{AVPSIPAuthDataItem, AVPSIPAuthenticate},
		{AVPSIPAuthDataItem, AVPSIPItemNumber},
		{AVPUserName},
		{AVPSIPAuthDataItem, AVPUserName},
		{},
	} {
		all := FindIn(m.AVP, path...)
		var want *diam.AVP
		if len(all) > 0 {
			want = all[0]
		}
		if got := Find(m, path...); got != want {
			t.Errorf("Find(%v) = %v, want %v (FindIn: %d)", path, got, want, len(all))
		}
	}
	if s := String(m, AVPSIPAuthDataItem, AVPSIPAuthenticate); s != "second" {
		t.Errorf("String = %q, want second", s)
	}
}

// TestFindAllocatesNothing: every request's handler calls Find a dozen
// times (dupKeyOf, Session-Id, User-Name, ...); building FindIn's slice
// for the first element was 5 % of the HSS's CPU at 900 registrations/s
// (docs/performance.md, twentieth session).
func TestFindAllocatesNothing(t *testing.T) {
	m := diam.NewRequest(diam.CapabilitiesExchange, 0, nil)
	m.AddAVP(NewAVP(AVPSessionID, datatype.UTF8String("s;1")))
	m.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity("scscf.ims.test")))
	m.AddAVP(Grouped(AVPSIPAuthDataItem, NewAVP(AVPSIPAuthenticate, datatype.OctetString("x"))))
	if n := testing.AllocsPerRun(100, func() {
		if Find(m, AVPOriginHost) == nil || Find(m, AVPSIPAuthDataItem, AVPSIPAuthenticate) == nil || Find(m, AVPUserName) != nil {
			t.Fatal("Find missed")
		}
	}); n != 0 {
		t.Errorf("Find allocates %.1f times per three look-ups, want 0", n)
	}
}
