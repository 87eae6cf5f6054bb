package contacts

import "testing"

// TestIndexKeys: the index keys of hosts and sources are canonical
// (IPv6 lowered and compressed, IPv4-mapped unmapped, names lowered, the
// transport lowered) and cost one allocation each.
func TestIndexKeys(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"10.0.0.1", "10.0.0.1"},
		{"[2001:DB8:0::1]", "2001:db8::1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"UE.Example.ORG", "ue.example.org"},
	} {
		if got := normHost(tc.host); got != tc.want {
			t.Errorf("normHost(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
	if got := hostPort("[2001:DB8::1]", 5060); got != "2001:db8::1|5060" {
		t.Errorf("hostPort = %q", got)
	}
	if got := flowSource("UDP", "10.0.0.1", 5062); got != "t|udp|10.0.0.1|5062" {
		t.Errorf("flowSource = %q", got)
	}
	if got := saSource("10.0.0.1", 5100); got != "sa|10.0.0.1|5100" {
		t.Errorf("saSource = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = flowSource("UDP", "10.0.0.1", 5062) }); n != 1 {
		t.Errorf("flowSource: %v allocations, want 1", n)
	}
}
