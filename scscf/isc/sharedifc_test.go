package isc

import (
	"testing"

	"github.com/imscore/imscore/pkg/userdata"
)

func TestSharedIFCSets(t *testing.T) {
	sets, err := parseSharedIFCSets([]byte(`<SharedIFCSets><SharedIFCSet><SetID>7</SetID>
	<InitialFilterCriteria><Priority>1</Priority><TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF>
	<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>INVITE</Method></SPT></TriggerPoint>
	<ApplicationServer><ServerName>sip:as.example:5090</ServerName><DefaultHandling>1</DefaultHandling></ApplicationServer>
	</InitialFilterCriteria></SharedIFCSet></SharedIFCSets>`))
	if err != nil {
		t.Fatal(err)
	}
	if len(sets[7]) != 1 || sets[7][0].ApplicationServer.Handling() != userdata.SessionTerminated {
		t.Fatalf("%+v", sets)
	}
	for _, bad := range []string{`<x/>`, `<SharedIFCSets><SharedIFCSet><SetID>1</SetID><InitialFilterCriteria><Priority>1</Priority>
		<ApplicationServer><ServerName>mailto:x</ServerName></ApplicationServer></InitialFilterCriteria></SharedIFCSet></SharedIFCSets>`} {
		if _, err := parseSharedIFCSets([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
