// Package ipsecvm runs the P-CSCF's IPsec scenarios in a virtual machine
// whose kernel has ESP (this machine's has not): TestIPsec, on the host,
// builds an initramfs from the project's static binaries, busybox-static,
// iproute2's ip and the Debian cloud kernel's XFRM, ESP and crypto
// modules, boots it with qemu-system-x86_64 under TCG emulation, and
// reports the scenario tests that ran inside as its subtests.
//
// Inside the VM (files with the ipsecvm build tag, run by the initramfs's
// init as a test binary):
//
//	root netns   HSS 127.0.0.1:3868, I-CSCF 10.44.0.1:5070, S-CSCF 10.44.0.1:5080,
//	             eth0 10.0.2.15 → PostgreSQL of the host through qemu's user network
//	   │ veth core0 10.44.0.1 ↔ mw0 10.44.0.2
//	netns pcscf  P-CSCF 10.45.0.1:5060 (its protected ports per UE)
//	   │ veth gm0 10.45.0.1 ↔ ue0 10.45.0.100+n (the UEs' link)
//	netns ue     the scenario tests and their UEs (pkg/imsue), one address each
//
// ESP runs between the ue and pcscf namespaces, through two kernels' XFRM
// states as on a real Gm interface.
package ipsecvm

// Addresses and ports inside the VM (private to it: fixed ports are safe
// there).
const (
	Domain      = "ims.mnc001.mcc001.3gppnetwork.org"
	CoreIP      = "10.44.0.1" // root netns side of the Mw link
	PCSCFMwIP   = "10.44.0.2"
	PCSCFIP     = "10.45.0.1" // the P-CSCF's Gm address
	PCSCFPort   = 5060
	ICSCFPort   = 5070
	SCSCFPort   = 5080
	HSSPort     = 3868
	PCSCFAdmin  = PCSCFIP + ":9060"
	SCSCFAdmin  = CoreIP + ":9080"
	ICSCFAdmin  = CoreIP + ":9070"
	HSSAdmin    = CoreIP + ":9868"
	UENet       = "10.45.0." // UE n has UENet + (100+n)
	UELink      = "ue0"      // the UEs' interface in netns ue
	PCSCFLink   = "gm0"      // the P-CSCF's interface towards the UEs
	ConfigFile  = "/etc/ipsecvm.json"
	OutDir      = "/out" // copied to the host after the run
	NumUsers    = 40     // subscribers ue1..ueN provisioned before the boot
	SCSCFServer = "sip:scscf." + Domain + ":5080"
)

// TS 35.208 test set 1: the keys of every provisioned subscriber.
const (
	K   = "465b5ce8b199b49faa5f0a2ee238a6bc"
	OP  = "cdc202d5123e20f62b6d676ac72cb318"
	AMF = "8000"
)

// Config is what the host passes to the scenarios (ConfigFile).
type Config struct {
	DSN string `json:"dsn"` // PostgreSQL as the VM reaches it
}
