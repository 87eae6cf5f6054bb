//go:build ipsecvm

package ipsecvm

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/imsue"
)

// TestCallsOverSA (fault a): four UEs register over IPsec with every
// algorithm pair (hmac-sha-1-96 and hmac-md5-96, null and aes-cbc), two
// over UDP and two over TCP, and call each other in both directions at the
// same time with INVITEs above 1,300 bytes, which go over TCP through the
// SA (RFC 3261 §18.1.1) from the P-CSCF's protected client port. Each
// call must reach its callee, through that callee's own SA.
func TestCallsOverSA(t *testing.T) {
	type ueSpec struct {
		n         int
		tr        string
		alg, ealg string
	}
	specs := []ueSpec{
		{11, "udp", "hmac-sha-1-96", "null"},
		{12, "udp", "hmac-md5-96", "aes-cbc"},
		{13, "tcp", "hmac-sha-1-96", "aes-cbc"},
		{14, "tcp", "hmac-md5-96", "null"},
	}
	ues := map[int]*imsue.UE{}
	for _, s := range specs {
		s := s
		u := newUE(t, s.n, func(c *imsue.Config) {
			c.Transport, c.Algs, c.EAlgs = s.tr, []string{s.alg}, []string{s.ealg}
		})
		if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("UE %d register: %v", s.n, err)
		}
		if sa := u.SA(); sa == nil || sa.Alg != s.alg || sa.EAlg != s.ealg {
			t.Fatalf("UE %d: SA %+v, want %s/%s", s.n, sa, s.alg, s.ealg)
		}
		ues[s.n] = u
	}
	// Every ordered pair of neighbours, both directions, all at once.
	var pairs [][2]int
	for i := range specs {
		a, b := specs[i].n, specs[(i+1)%len(specs)].n
		pairs = append(pairs, [2]int{a, b}, [2]int{b, a})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(pairs))
	for _, p := range pairs {
		p := p
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := ctxT(t, 90*time.Second)
			call, err := ues[p[0]].Call(ctx, impu(p[1]), imsue.CallOptions{MinSize: 1500})
			if err != nil {
				errs <- fmt.Errorf("call %d → %d: %w", p[0], p[1], err)
				return
			}
			if call.InviteSize <= 1300 || call.InviteTransport != "tcp" {
				errs <- fmt.Errorf("call %d → %d: INVITE of %d bytes over %s, want > 1300 over tcp", p[0], p[1], call.InviteSize, call.InviteTransport)
			}
			time.Sleep(500 * time.Millisecond)
			if err := call.Hangup(ctx); err != nil {
				errs <- fmt.Errorf("hang up %d → %d: %w", p[0], p[1], err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each callee got exactly its own calls, each INVITE above 1,300
	// bytes and over TCP (through its SA: the UE's kernel only lets ESP
	// into its protected server port from the P-CSCF's port-c).
	for _, s := range specs {
		got := 0
		for len(ues[s.n].Incoming()) > 0 {
			c := <-ues[s.n].Incoming()
			got++
			if c.InviteSize <= 1300 || c.InviteTransport != "tcp" {
				t.Errorf("UE %d received an INVITE of %d bytes over %s", s.n, c.InviteSize, c.InviteTransport)
			}
		}
		if got != 2 {
			t.Errorf("UE %d answered %d calls, want 2", s.n, got)
		}
		checkESP(t, ues[s.n], s.n)
	}
	// Calls without padding between the two UDP UEs: the caller's INVITE
	// (under 1,300 bytes) goes over UDP through its SA, and the callee's
	// arrives over the transport its size calls for (RFC 3261 §18.1.1),
	// through the callee's SA either way.
	for _, p := range [][2]int{{11, 12}, {12, 11}} {
		call, err := ues[p[0]].Call(ctxT(t, 60*time.Second), impu(p[1]), imsue.CallOptions{})
		if err != nil {
			t.Fatalf("small call %d → %d: %v", p[0], p[1], err)
		}
		if call.InviteSize > 1300 || call.InviteTransport != "udp" {
			t.Errorf("small call %d → %d: the caller sent %d bytes over %s, want ≤ 1300 over udp", p[0], p[1], call.InviteSize, call.InviteTransport)
		}
		select {
		case in := <-ues[p[1]].Incoming():
			want := "udp"
			if in.InviteSize > 1300 {
				want = "tcp"
			}
			if in.InviteTransport != want {
				t.Errorf("small call %d → %d: the callee got %d bytes over %s, want %s", p[0], p[1], in.InviteSize, in.InviteTransport, want)
			}
			t.Logf("small call %d → %d: INVITE %d bytes over %s from the caller, %d bytes over %s to the callee", p[0], p[1], call.InviteSize, call.InviteTransport, in.InviteSize, in.InviteTransport)
		case <-time.After(5 * time.Second):
			t.Errorf("small call %d → %d: the callee reports no incoming call", p[0], p[1])
		}
		if err := call.Hangup(ctxT(t, 20*time.Second)); err != nil {
			t.Errorf("hang up the small call %d → %d: %v", p[0], p[1], err)
		}
	}
	for _, n := range []int{11, 12} {
		checkESP(t, ues[n], n)
	}
}
