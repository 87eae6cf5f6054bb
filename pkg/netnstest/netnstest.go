// Package netnstest gives tests a network namespace of their own, made
// with iproute2 (`ip netns add`) and deleted when the test ends, and a
// netlink handle inside it, so that XFRM states, policies and addresses
// a test installs never touch the host's.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Handle creates the network namespace "<prefix>-<8 hex digits>" for t
// and returns a netlink handle in it for the given netlink families
// (e.g. unix.NETLINK_XFRM; none: every family netlink supports). The
// namespace and the handle are removed at t's cleanup. It skips t when
// not run as root (creating a namespace needs CAP_SYS_ADMIN) and fails
// it when `ip netns add` fails.
func Handle(t testing.TB, prefix string, families ...int) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (ip netns add)")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := prefix + "-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	h, err := netlink.NewHandleAt(ns, families...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}
