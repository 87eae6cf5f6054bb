package isc

import (
	"encoding/xml"
	"fmt"
	"os"

	"github.com/imscore/imscore/pkg/ifc"
	"github.com/imscore/imscore/pkg/userdata"
)

// sharedIFCFile is the file format of Config.SharedIFCSetsFile: the iFC
// sets a profile references with Extension/SharedIFCSetID (TS 29.228
// §6.6.3), each iFC written exactly as inside a ServiceProfile (TS 29.228
// Annex E tInitialFilterCriteria):
//
//	<SharedIFCSets>
//	  <SharedIFCSet>
//	    <SetID>1</SetID>
//	    <InitialFilterCriteria>…</InitialFilterCriteria>
//	  </SharedIFCSet>
//	</SharedIFCSets>
type sharedIFCFile struct {
	XMLName xml.Name `xml:"SharedIFCSets"`
	Sets    []struct {
		SetID uint32                           `xml:"SetID"`
		IFCs  []userdata.InitialFilterCriteria `xml:"InitialFilterCriteria"`
	} `xml:"SharedIFCSet"`
}

// loadSharedIFCSets reads and checks a shared iFC set file: every set id
// once, every iFC valid as in a profile (userdata validation, ifc.Check).
// An empty name gives an empty table.
func loadSharedIFCSets(name string) (map[uint32][]userdata.InitialFilterCriteria, error) {
	out := map[uint32][]userdata.InitialFilterCriteria{}
	if name == "" {
		return out, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("shared-ifc-sets: %w", err)
	}
	return parseSharedIFCSets(b)
}

func parseSharedIFCSets(b []byte) (map[uint32][]userdata.InitialFilterCriteria, error) {
	var f sharedIFCFile
	if err := xml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("shared-ifc-sets: %w", err)
	}
	out := map[uint32][]userdata.InitialFilterCriteria{}
	for i, set := range f.Sets {
		if _, dup := out[set.SetID]; dup {
			return nil, fmt.Errorf("shared-ifc-sets: SetID %d given twice", set.SetID)
		}
		// Validate the iFCs as a profile would hold them.
		sub := &userdata.IMSSubscription{PrivateID: "shared@ifc.set", ServiceProfiles: []userdata.ServiceProfile{{
			PublicIdentities:      []userdata.PublicIdentity{{Identity: "sip:shared@ifc.set"}},
			InitialFilterCriteria: set.IFCs,
		}}}
		if err := sub.Validate(); err != nil {
			return nil, fmt.Errorf("shared-ifc-sets: set %d (SharedIFCSet[%d]): %w", set.SetID, i+1, err)
		}
		if err := ifc.Check(set.IFCs); err != nil {
			return nil, fmt.Errorf("shared-ifc-sets: set %d: %w", set.SetID, err)
		}
		out[set.SetID] = set.IFCs
	}
	return out, nil
}
