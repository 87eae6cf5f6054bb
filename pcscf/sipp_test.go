package pcscf

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/siptest"
)

// freeUDPPort is a port free for UDP and TCP below the ephemeral range
// (a port drawn from 127.0.0.1:0 can be taken by an outgoing connection
// before the test binds it).
func freeUDPPort(t *testing.T) int { return siptest.FreePort(t) }

// TestSecAgreeWithSipp runs sipp as a sec-agree UE. SAs go to an in-memory
// backend: this kernel cannot install ESP states, so the REGISTER to the
// protected port travels unprotected; the SIP side (Security-Server,
// Security-Verify, integrity-protected, SA lifecycle) is what is tested.
func TestSecAgreeWithSipp(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatal("sipp is required (Debian package sip-tester)")
	}
	core := newPeer(t, "")
	be := &memBackend{}
	pcPortC, pcPortS := freeUDPPort(t), freeUDPPort(t)
	p := startPCSCF(t, core, func(c *Config) {
		c.IPsec, c.IPsecBackend, c.PortC, c.PortS = IPsecAuto, be, pcPortC, pcPortS
	})
	uePortC, uePortS := freeUDPPort(t), freeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, p.addr(), "-sf", "testdata/secagree_register.xml",
		"-t", "u1", "-i", "127.0.0.1", "-p", fmt.Sprint(uePortC), "-m", "1", "-nostdin", "-trace_err",
		"-key", "uepc", fmt.Sprint(uePortC), "-key", "ueps", fmt.Sprint(uePortS), "-key", "pcs", fmt.Sprint(pcPortS),
		"-error_file", t.TempDir()+"/err.log")
	done := make(chan error, 1)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()

	first := coreAnswerRegister(t, core, true)
	if got := hdr(first, "Authorization"); !strings.Contains(got, `integrity-protected="no"`) {
		t.Errorf("first Authorization %q", got)
	}
	select {
	case err := <-done:
		t.Fatalf("sipp ended before its protected REGISTER: %v\n%s", err, out.String())
	case <-time.After(200 * time.Millisecond):
	}
	second := coreAnswerRegister(t, core, true)
	if got := hdr(second, "Authorization"); !strings.Contains(got, `integrity-protected="ipsec-3gpp"`) {
		t.Errorf("second Authorization %q", got)
	}
	if hdr(second, "Security-Verify") != "" || strings.Contains(hdr(second, "Require"), "sec-agree") {
		t.Errorf("sec-agree headers forwarded: %q %q", hdr(second, "Security-Verify"), hdr(second, "Require"))
	}
	if err := <-done; err != nil {
		t.Fatalf("sipp: %v\n%s", err, out.String())
	}
	if be.count() != 1 {
		t.Fatalf("%d SA sets installed", be.count())
	}
	st := p.Status()
	if len(st.Contacts) != 1 || st.Contacts[0].SA == nil {
		t.Fatalf("status %+v", st)
	}
	sa := st.Contacts[0].SA
	if sa.UEPortC != uint16(uePortC) || sa.UEPortS != uint16(uePortS) || sa.UESPIC != 3000 || sa.UESPIS != 3001 || sa.Alg != "hmac-sha-1-96" || sa.EAlg != "null" || int(sa.PCSCFPortS) != pcPortS {
		t.Fatalf("SA %+v", sa)
	}
	be.mu.Lock()
	var inst []imsheader.SecurityMechanism
	for _, s := range be.installed {
		if s.IK[0] != 0x00 || s.IK[15] != 0xff || s.CK[0] != 0xff {
			t.Errorf("keys not from the 401: ik %x ck %x", s.IK, s.CK)
		}
	}
	be.mu.Unlock()
	_ = inst

	// The registered UE's requests must come from its protected ports.
	ue := newPeer(t, "")
	message(ue, p.addr(), "not-over-sa", "")
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 403 {
		t.Fatalf("request outside the SA: %d", r.StatusCode)
	}
}

// TestSecurityVerifyMismatch: a protected REGISTER whose Security-Verify
// differs from the offered Security-Server gets 494; no SA is promoted.
func TestSecurityVerifyMismatch(t *testing.T) {
	core := newPeer(t, "")
	be := &memBackend{}
	p := startPCSCF(t, core, func(c *Config) {
		c.IPsec, c.IPsecBackend, c.PortC, c.PortS = IPsecAuto, be, freeUDPPort(t), freeUDPPort(t)
	})
	ue := newPeer(t, "")
	register(ue, p.addr(), "mm", 1, 600, fmt.Sprintf("Security-Client: ipsec-3gpp;alg=hmac-md5-96;spi-c=10;spi-s=11;port-c=%d;port-s=%d\nRequire: sec-agree\n", ue.port(), ue.port()+1))
	coreAnswerRegister(t, core, true)
	r := ue.nextResponse(5 * time.Second)
	if r.StatusCode != 401 || !strings.Contains(hdr(r, "Security-Server"), "alg=hmac-md5-96") {
		t.Fatalf("401 %d Security-Server %q", r.StatusCode, hdr(r, "Security-Server"))
	}
	register(ue, fmt.Sprintf("127.0.0.1:%d", p.cfg.PortS), "mm", 2, 600, "Security-Verify: ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=4\nRequire: sec-agree\n")
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 494 {
		t.Fatalf("mismatching Security-Verify: %d", r.StatusCode)
	}
	if len(p.Status().Contacts) != 0 {
		t.Fatal("contact stored")
	}
}
