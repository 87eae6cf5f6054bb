package imsue

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// ErrSameNetns: the UE would install its SAs in the network namespace
// that holds the P-CSCF's end of the SAs. Both ends of an SA set have the
// same four ESP states (TS 33.203 §7.1: the same addresses, ports and
// SPIs on both sides), which a kernel holds once, and mirrored policies
// with the same selectors: in one namespace the second end fails to
// install (EEXIST, a 500 from the P-CSCF) or, worse, replaces the first
// end's policies, and no packet is protected as either side expects.
var ErrSameNetns = errors.New("imsue: the P-CSCF's IPsec end is in this network namespace")

// pcscfEndHere reports (ErrSameNetns, wrapped with what was found) whether
// the network namespace of h is the P-CSCF's for pcscf, the P-CSCF's SIP
// address:
//   - pcscf is an address of one of the namespace's interfaces (the
//     P-CSCF listens here: its SAs will be installed here), or
//   - an XFRM policy here is the P-CSCF's side of an SA set for pcscf: a
//     policy for traffic out from pcscf or in to pcscf (a UE's policies
//     are the mirror image: out to pcscf, in from it; those of other UEs
//     of this process are no obstacle).
//
// A namespace whose addresses or policies cannot be read (no
// CAP_NET_ADMIN) passes: installing SAs there fails on its own.
func pcscfEndHere(h *netlink.Handle, pcscf net.IP) error {
	if addrs, err := h.AddrList(nil, netlink.FAMILY_ALL); err == nil {
		for _, a := range addrs {
			if a.IP.Equal(pcscf) {
				return fmt.Errorf("%w: the P-CSCF's address %s is an address of this network namespace (interface index %d)", ErrSameNetns, pcscf, a.LinkIndex)
			}
		}
	}
	family := netlink.FAMILY_V4
	if pcscf.To4() == nil {
		family = netlink.FAMILY_V6
	}
	pols, err := h.XfrmPolicyList(family)
	if err != nil {
		return nil
	}
	for _, p := range pols {
		if (p.Dir == netlink.XFRM_DIR_OUT && p.Src != nil && p.Src.IP.Equal(pcscf)) ||
			(p.Dir == netlink.XFRM_DIR_IN && p.Dst != nil && p.Dst.IP.Equal(pcscf)) {
			return fmt.Errorf("%w: XFRM policy %s %s:%d -> %s:%d is the P-CSCF's side of an SA set", ErrSameNetns, p.Dir, p.Src.IP, p.SrcPort, p.Dst.IP, p.DstPort)
		}
	}
	return nil
}

// checkOwnNetns runs pcscfEndHere in the current network namespace.
func checkOwnNetns(pcscf net.IP) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil // no netlink: the kernel probe reports it
	}
	defer h.Close()
	return pcscfEndHere(h, pcscf)
}
