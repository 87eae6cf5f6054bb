//go:build ipsecvm

package ipsecvm

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/imsue"
)

// messageOverSA sends a MESSAGE from u to itself over its SA and fails
// the test unless it passes.
func messageOverSA(t *testing.T, u *imsue.UE) {
	t.Helper()
	if err := u.SendMessage(ctxT(t, 20*time.Second), u.IMPU(), "over the SA"); err != nil {
		t.Fatalf("MESSAGE over the SA: %v", err)
	}
	select {
	case <-u.Messages():
	case <-time.After(10 * time.Second):
		t.Fatal("the MESSAGE did not come back")
	}
}

// TestReplaceSASet (fault b): a new SA set replaces the old one while the
// UE keeps its ports (and SPIs): a REGISTER retried after a 401, with the
// same or fresh SPIs, and a UE that registers again from scratch while
// registered (re-authentication). The new set must carry the protected
// REGISTER, its 200 and the next request.
func TestReplaceSASet(t *testing.T) {
	t.Run("retried REGISTER, same SPIs", func(t *testing.T) {
		u := newUE(t, 21, func(c *imsue.Config) { c.ReuseSPIs = true })
		if err := u.Register(ctxT(t, 40*time.Second), imsue.RegisterOptions{Retries: 1}); err != nil {
			t.Fatalf("register: %v", err)
		}
		messageOverSA(t, u)
		checkESP(t, u, 21)
	})
	t.Run("retried REGISTER, fresh SPIs", func(t *testing.T) {
		u := newUE(t, 22)
		if err := u.Register(ctxT(t, 40*time.Second), imsue.RegisterOptions{Retries: 1, FreshSPIs: true}); err != nil {
			t.Fatalf("register: %v", err)
		}
		messageOverSA(t, u)
		checkESP(t, u, 22)
	})
	t.Run("registered UE starts over with the same ports and SPIs", func(t *testing.T) {
		u := newUE(t, 23, func(c *imsue.Config) { c.ReuseSPIs = true })
		if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("first register: %v", err)
		}
		first := u.SA()
		if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("second register: %v", err)
		}
		if sa := u.SA(); sa.UE.SPIC != first.UE.SPIC || sa.UE.PortC != first.UE.PortC {
			t.Fatalf("the UE changed SPIs or ports: %+v → %+v", first.UE, sa.UE)
		}
		messageOverSA(t, u)
		checkESP(t, u, 23)
	})
}

// TestResyncThroughIPsec (fault c): the USIM is far ahead of the HSS, so
// it answers the first challenge with AUTS, in a REGISTER without SAs
// from the same address and port-c; the S-CSCF must get it and
// challenge again, and the UE registers over IPsec.
func TestResyncThroughIPsec(t *testing.T) {
	u := newUE(t, 24, func(c *imsue.Config) { c.SQN = 1 << 40 })
	if err := u.Register(ctxT(t, 40*time.Second)); err != nil {
		t.Fatalf("register with resync: %v", err)
	}
	messageOverSA(t, u)
	checkESP(t, u, 24)
}

// TestPlaintextIsNotProtected (fault d): after registering, the UE sends
// from its protected client port to the P-CSCF's unprotected port,
// outside the SA: a re-REGISTER with Security-Verify and a MESSAGE. The
// P-CSCF must not treat them as protected: no 200 for the re-REGISTER
// (which the S-CSCF would accept without a challenge as
// integrity-protected), no MESSAGE delivered.
func TestPlaintextIsNotProtected(t *testing.T) {
	u := newUE(t, 25)
	if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("register: %v", err)
	}
	err := u.Reregister(ctxT(t, 20*time.Second), imsue.SendOptions{Unprotected: true})
	if err == nil {
		t.Error("a plaintext re-REGISTER with Security-Verify got 200: the P-CSCF marked it integrity-protected")
	} else if !errors.Is(err, imsue.ErrRejected) {
		t.Errorf("plaintext re-REGISTER: %v (want a rejection)", err)
	}
	err = u.SendMessage(ctxT(t, 20*time.Second), u.IMPU(), "plaintext", imsue.SendOptions{Unprotected: true})
	if err == nil {
		t.Error("a plaintext MESSAGE from the registered UE's address was routed as from the registered UE")
	}
	select {
	case m := <-u.Messages():
		t.Errorf("the plaintext MESSAGE was delivered: %+v", m)
	case <-time.After(2 * time.Second):
	}
	// The SA still works.
	messageOverSA(t, u)
}

// TestDeregisterOverSA (fault e): the 200 to a de-REGISTER reaches the
// UE through the SA (its kernel drops anything else on port-c), and the
// reg event NOTIFY that ends its subscription too.
func TestDeregisterOverSA(t *testing.T) {
	u, notifys := registeredSubscribed(t, 26)
	if err := u.Deregister(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("de-register: %v", err)
	}
	waitDeregistered(t, notifys, 15*time.Second)
	if un := u.Unprotected(); len(un) > 0 {
		t.Errorf("messages outside the SA: %v", un)
	}
}

// registeredSubscribed registers UE n and subscribes it to its reg event.
func registeredSubscribed(t *testing.T, n int) (*imsue.UE, <-chan imsue.RegNotify) {
	t.Helper()
	u := newUE(t, n)
	if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("register: %v", err)
	}
	notifys, err := u.SubscribeReg(ctxT(t, 20*time.Second))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return u, notifys
}

// waitDeregistered waits for a reg event NOTIFY that ends the UE's
// registration.
func waitDeregistered(t *testing.T, notifys <-chan imsue.RegNotify, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case n := <-notifys:
			if n.Deregistered {
				return
			}
		case <-deadline:
			t.Fatalf("no reg event NOTIFY ending the registration reached the UE within %v", within)
		}
	}
}

// imsctl runs imsctl in the root netns on the scenarios' database.
func imsctl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(inRoot[0], append(append(inRoot[1:], "/bin/imsctl"), args...)...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+cfg.DSN)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("imsctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestNetworkDeregistration (fault f): `imsctl deregister` (HSS RTR →
// S-CSCF): the S-CSCF's NOTIFY to the UE must reach it through its SA,
// although the P-CSCF learns of the de-registration from its own NOTIFY.
func TestNetworkDeregistration(t *testing.T) {
	u, notifys := registeredSubscribed(t, 27)
	// The P-CSCF subscribes right after the 200; give it a moment.
	time.Sleep(2 * time.Second)
	imsctl(t, "deregister", impu(27))
	waitDeregistered(t, notifys, 20*time.Second)
	if un := u.Unprotected(); len(un) > 0 {
		t.Errorf("messages outside the SA: %v", un)
	}
	waitContact(t, impu(27), false, 15*time.Second)
}

// waitContact waits until the P-CSCF has (want) or has not a contact
// for impu.
func waitContact(t *testing.T, impu string, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		has := false
		for _, c := range contacts(t).Contacts {
			for _, i := range c.IMPUs {
				has = has || i == impu
			}
		}
		if has == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("P-CSCF contact of %s present=%v after %v, want %v", impu, has, within, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTransportSwitch (fault g): a UE registered over UDP re-registers
// over TCP through the same SA, then again; both re-REGISTERs get 200
// over the SA and requests still pass.
func TestTransportSwitch(t *testing.T) {
	u := newUE(t, 28, func(c *imsue.Config) { c.Algs, c.EAlgs = []string{"hmac-sha-1-96"}, []string{"null"} })
	if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("register: %v", err)
	}
	sa := u.SA()
	if err := u.SetTransport("tcp"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := u.Reregister(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("re-register %d over TCP: %v", i, err)
		}
	}
	if got := u.SA(); got.PCSCF.SPIS != sa.PCSCF.SPIS {
		t.Errorf("the SA changed: %+v → %+v", sa.PCSCF, got.PCSCF)
	}
	messageOverSA(t, u)
	if err := u.SetTransport("udp"); err != nil {
		t.Fatal(err)
	}
	if err := u.Reregister(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("re-register back over UDP: %v", err)
	}
	messageOverSA(t, u)
}

// TestPCSCFRestart: the P-CSCF restarts; it re-installs the SAs of its
// stored contacts and the UE's next protected request passes without a
// new registration.
func TestPCSCFRestart(t *testing.T) {
	u := newUE(t, 29)
	if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("register: %v", err)
	}
	restartPCSCF(t)
	messageOverSA(t, u)
	if err := u.Reregister(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("re-register after the restart: %v", err)
	}
}

// TestRegSubscriptionRefresh (fault h): the P-CSCF's reg event
// subscription (60 s here, the S-CSCF's minimum) is refreshed before it
// expires: 75 s after the registration, an RTR still reaches the P-CSCF,
// which drops the contact.
func TestRegSubscriptionRefresh(t *testing.T) {
	t.Parallel()
	u := newUE(t, 30)
	if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("register: %v", err)
	}
	time.Sleep(75 * time.Second)
	imsctl(t, "deregister", impu(30))
	waitContact(t, impu(30), false, 20*time.Second)
}
