package diameter

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// rawConn is a hand-driven TCP peer for tests that need to see the bytes.
type rawConn struct {
	nc net.Conn
	n  *Node // for its dictionary
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	n, err := New(Config{OriginHost: "raw.test", OriginRealm: testRealm, Apps: []App{AppCx}})
	if err != nil {
		t.Fatal(err)
	}
	return &rawConn{nc: nc, n: n}
}

func buildCER(p *Node, host string, apps []uint32) *diam.Message {
	m := diam.NewMessage(CmdCapabilitiesExchange, diam.RequestFlag, 0, 1, 1, p.Dictionary())
	m.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(host)))
	m.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(testRealm)))
	m.AddAVP(NewAVP(AVPHostIPAddress, datatype.Address(net.IPv4(127, 0, 0, 1).To4())))
	m.AddAVP(NewAVP(AVPVendorID, datatype.Unsigned32(0)))
	m.AddAVP(NewAVP(AVPProductName, datatype.UTF8String("rawtest")))
	for _, a := range apps {
		if App(a).Vendor() != 0 {
			m.AddAVP(VendorSpecificAppID(App(a)))
		} else {
			m.AddAVP(NewAVP(AVPAuthApplicationID, datatype.Unsigned32(a)))
		}
	}
	return m
}

func (rc *rawConn) tryCER(host string, apps []uint32) error {
	b, _ := buildCER(rc.n, host, apps).Serialize()
	if _, err := rc.nc.Write(b); err != nil {
		return err
	}
	fb, err := readFrame(rc.nc)
	if err != nil {
		return fmt.Errorf("no CEA: %w", err)
	}
	cea, err := Decode(fb, rc.n.Dictionary())
	if err != nil {
		return err
	}
	if code, _, _ := Result(cea); code != DiameterSuccess {
		return fmt.Errorf("CEA result %d", code)
	}
	return nil
}

// cer sends a CER and returns the CEA; failure says whether a non-2001 CEA is
// expected.
func (rc *rawConn) cer(t *testing.T, host string, apps []uint32, failure bool) *diam.Message {
	t.Helper()
	rc.write(t, buildCER(rc.n, host, apps))
	fb, err := readFrame(rc.nc)
	if err != nil {
		t.Fatalf("no CEA: %v", err)
	}
	cea, err := Decode(fb, rc.n.Dictionary())
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := Result(cea); (code == DiameterSuccess) == failure {
		t.Fatalf("CEA Result-Code %d (failure expected: %v)", code, failure)
	}
	return cea
}

func (rc *rawConn) write(t *testing.T, m *diam.Message) {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readRaw reads a message whose command may be unknown to the dictionary and
// decodes its AVPs against the base application.
func (rc *rawConn) readRaw(t *testing.T) (*diam.Header, []*diam.AVP) {
	t.Helper()
	b, err := readFrame(rc.nc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := diam.DecodeHeader(b[:diam.HeaderLength])
	if err != nil {
		t.Fatal(err)
	}
	var avps []*diam.AVP
	for rest := b[diam.HeaderLength:]; len(rest) > 0; {
		a, err := diam.DecodeAVP(rest, h.ApplicationID, rc.n.Dictionary())
		if err != nil {
			t.Fatal(err)
		}
		avps = append(avps, a)
		rest = rest[min(len(rest), a.Len()):]
	}
	return h, avps
}

func firstOf(avps []*diam.AVP, code AVPCode) *diam.AVP {
	if r := FindIn(avps, code); len(r) > 0 {
		return r[0]
	}
	return nil
}
