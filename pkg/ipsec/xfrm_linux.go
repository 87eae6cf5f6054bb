package ipsec

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func init() {
	// The kernel's extended ack text ("Requested type not found") makes
	// errors readable.
	nl.EnableErrorMessageReporting = true
}

// Kernel is the XFRM netlink Backend. The zero value is not usable; build
// it with NewKernel.
type Kernel struct {
	h     *netlink.Handle
	reqid atomic.Uint32
	// Priority of the installed policies (default 2080 like `ip xfrm`).
	Priority int
	// Side is the end of the SA set this kernel is (SidePCSCF by
	// default): a UE installs the same four states with the policies'
	// directions mirrored.
	Side Side
}

// Side says which end of a SecAssoc installs it.
type Side int

// Sides of a SecAssoc.
const (
	SidePCSCF Side = iota // the P-CSCF (OneSA.Out is outbound)
	SideUE                // the UE (OneSA.Out is inbound)
)

// NewKernel returns a backend using h (nil: a handle on the current
// network namespace; pass netlink.NewHandleAt(ns) for another one).
func NewKernel(h *netlink.Handle) (*Kernel, error) {
	if h == nil {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_XFRM)
		if err != nil {
			return nil, classify(fmt.Errorf("ipsec: netlink handle: %w", err))
		}
	}
	k := &Kernel{h: h, Priority: 2080}
	k.reqid.Store(0x1000)
	return k, nil
}

// Close releases the netlink handle.
func (k *Kernel) Close() { _ = k.h.Close() }

// classify wraps EPROTONOSUPPORT as ErrNoESP, EPERM as ErrNoPermission
// and EEXIST as ErrExists.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPROTONOSUPPORT):
		return fmt.Errorf("%w: %v", ErrNoESP, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %v", ErrNoPermission, err)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	return err
}

func hostNet(ip net.IP) *net.IPNet {
	if v4 := ip.To4(); v4 != nil {
		return &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}
}

// reqidFor derives a stable reqid for one SA from its SPI, so Remove can
// rebuild the policies without stored state.
func reqidFor(spi uint32) int { return int(spi&0x3fffffff) | 0x40000000 }

func (k *Kernel) state(sa OneSA, s SecAssoc) (*netlink.XfrmState, error) {
	an, ak, err := AuthKey(s.Alg, s.IK)
	if err != nil {
		return nil, err
	}
	cn, ck, err := CryptKey(s.EAlg, s.CK)
	if err != nil {
		return nil, err
	}
	return &netlink.XfrmState{
		Src: sa.Src, Dst: sa.Dst, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
		Spi: int(sa.SPI), Reqid: reqidFor(sa.SPI), ReplayWindow: 32,
		Auth:  &netlink.XfrmStateAlgo{Name: an, Key: ak, TruncateLen: 96},
		Crypt: &netlink.XfrmStateAlgo{Name: cn, Key: ck},
		Selector: &netlink.XfrmPolicy{
			Src: hostNet(sa.Src), Dst: hostNet(sa.Dst),
			SrcPort: int(sa.SrcPort), DstPort: int(sa.DstPort),
		},
	}, nil
}

// Policies returns the XFRM policies (UDP and TCP) of one SA as side
// installs them.
func Policies(sa OneSA, priority int, side Side) []*netlink.XfrmPolicy {
	dir := netlink.XFRM_DIR_IN
	if sa.Out != (side == SideUE) {
		dir = netlink.XFRM_DIR_OUT
	}
	var out []*netlink.XfrmPolicy
	for _, proto := range []netlink.Proto{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		out = append(out, &netlink.XfrmPolicy{
			Src: hostNet(sa.Src), Dst: hostNet(sa.Dst), Proto: proto,
			SrcPort: int(sa.SrcPort), DstPort: int(sa.DstPort),
			Dir: dir, Priority: priority,
			Tmpls: []netlink.XfrmPolicyTmpl{{
				Src: sa.Src, Dst: sa.Dst, Proto: netlink.XFRM_PROTO_ESP,
				Mode: netlink.XFRM_MODE_TRANSPORT, Reqid: reqidFor(sa.SPI),
			}},
		})
	}
	return out
}

// InstallPolicies adds the eight policies of s (no states).
func (k *Kernel) InstallPolicies(s SecAssoc) error {
	var done []*netlink.XfrmPolicy
	for _, sa := range s.SAs() {
		for _, p := range Policies(sa, k.Priority, k.Side) {
			if err := k.h.XfrmPolicyUpdate(p); err != nil {
				for _, d := range done {
					_ = k.h.XfrmPolicyDel(d)
				}
				return classify(fmt.Errorf("ipsec: add policy %s:%d→%s:%d: %w", sa.Src, sa.SrcPort, sa.Dst, sa.DstPort, err))
			}
			done = append(done, p)
		}
	}
	return nil
}

// InstallStates adds the four ESP states of s.
func (k *Kernel) InstallStates(s SecAssoc) error {
	var done []*netlink.XfrmState
	for _, sa := range s.SAs() {
		st, err := k.state(sa, s)
		if err == nil {
			err = k.h.XfrmStateAdd(st)
		}
		if err != nil {
			for _, d := range done {
				_ = k.h.XfrmStateDel(d)
			}
			return classify(fmt.Errorf("ipsec: add ESP state spi %d %s→%s: %w", sa.SPI, sa.Src, sa.Dst, err))
		}
		done = append(done, st)
	}
	return nil
}

// Install adds states then policies; on failure it removes what it added.
func (k *Kernel) Install(s SecAssoc) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := k.InstallStates(s); err != nil {
		return err
	}
	if err := k.InstallPolicies(s); err != nil {
		_ = k.removeStates(s)
		return err
	}
	return nil
}

func (k *Kernel) removeStates(s SecAssoc) error {
	var first error
	for _, sa := range s.SAs() {
		st := &netlink.XfrmState{Src: sa.Src, Dst: sa.Dst, Proto: netlink.XFRM_PROTO_ESP, Spi: int(sa.SPI)}
		if err := k.h.XfrmStateDel(st); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) && first == nil {
			first = classify(err)
		}
	}
	return first
}

// RemovePolicies deletes the policies of s, ignoring missing ones.
func (k *Kernel) RemovePolicies(s SecAssoc) error {
	var first error
	for _, sa := range s.SAs() {
		for _, p := range Policies(sa, k.Priority, k.Side) {
			if err := k.h.XfrmPolicyDel(p); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) && first == nil {
				first = classify(err)
			}
		}
	}
	return first
}

// Remove deletes policies and states of s.
func (k *Kernel) Remove(s SecAssoc) error {
	e1 := k.RemovePolicies(s)
	e2 := k.removeStates(s)
	return errors.Join(e1, e2)
}

// Probe checks once whether the kernel behind h installs ESP transport
// states: it adds a throw-away SA (127.0.0.1→127.0.0.1, a random high SPI,
// hmac(sha1)/null) and deletes it. Errors wrap ErrNoESP (EPROTONOSUPPORT,
// no CONFIG_INET_ESP) or ErrNoPermission (no CAP_NET_ADMIN).
func (k *Kernel) Probe() error {
	spi, err := NewSPIAllocator(0xfff00000, 0xfffffff0)
	if err != nil {
		return err
	}
	v, _ := spi.Alloc()
	lo := net.IPv4(127, 0, 0, 1).To4()
	st := &netlink.XfrmState{
		Src: lo, Dst: lo, Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
		Spi:   int(v),
		Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha1)", Key: make([]byte, 20), TruncateLen: 96},
		Crypt: &netlink.XfrmStateAlgo{Name: "ecb(cipher_null)", Key: []byte{}},
	}
	if err := k.h.XfrmStateAdd(st); err != nil {
		return classify(fmt.Errorf("ipsec: probe ESP state: %w", err))
	}
	if err := k.h.XfrmStateDel(st); err != nil {
		return classify(fmt.Errorf("ipsec: probe delete: %w", err))
	}
	return nil
}
