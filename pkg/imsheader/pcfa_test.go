package imsheader

import "testing"

func TestPChargingFunctionAddresses(t *testing.T) {
	p := PChargingFunctionAddresses{CCF: []string{"aaa://ccf1.ims.test:3868", "ccf2.ims.test"}, ECF: []string{"[2001:db8::1]"}}
	s := p.String()
	if s != `ccf="aaa://ccf1.ims.test:3868";ccf=ccf2.ims.test;ecf="[2001:db8::1]"` {
		t.Fatalf("String = %s", s)
	}
	back, err := ParsePChargingFunctionAddresses(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.CCF) != 2 || back.CCF[0] != "aaa://ccf1.ims.test:3868" || back.ECF[0] != "[2001:db8::1]" {
		t.Fatalf("parsed %+v", back)
	}
	// RFC 7315 §5.5 example form.
	if q, err := ParsePChargingFunctionAddresses("ccf=192.1.1.1; ccf=192.1.1.2; ecf=192.1.1.3"); err != nil || len(q.CCF) != 2 || len(q.ECF) != 1 {
		t.Fatalf("RFC example: %+v %v", q, err)
	}
	if _, err := ParsePChargingFunctionAddresses("foo=bar"); err == nil {
		t.Error("a value without ccf/ecf parsed")
	}
}
