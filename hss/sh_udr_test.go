package hss_test

import (
	"context"
	"slices"
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

const (
	aliceOther = "sip:alice-other@" + realm // alice's IRS, another service profile: not an alias
	aliceWork  = "sip:alice-work@" + realm  // alice's IMPI, an IRS of its own
	psiIMPU    = "sip:conference@" + realm  // a PSI
)

// addAliceIdentities gives alice two more public identities (aliceOther,
// aliceWork) and provisions a PSI.
func addAliceIdentities(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO service_profile (name) VALUES ('other')`,
		`INSERT INTO impu (identity, service_profile_id, implicit_set_id)
			SELECT '` + aliceOther + `', p.id, u.implicit_set_id FROM service_profile p, impu u
			WHERE p.name = 'other' AND u.identity = '` + aliceIMPU + `'`,
		`WITH s AS (INSERT INTO implicit_registration_set DEFAULT VALUES RETURNING id)
			INSERT INTO impu (identity, service_profile_id, implicit_set_id)
			SELECT '` + aliceWork + `', p.id, s.id FROM service_profile p, s WHERE p.name = 'default'`,
		`INSERT INTO impi_impu SELECT i.id, u.id FROM impi i, impu u
			WHERE i.identity = '` + aliceIMPI + `' AND u.identity IN ('` + aliceOther + `', '` + aliceWork + `')`,
		`WITH s AS (INSERT INTO implicit_registration_set DEFAULT VALUES RETURNING id)
			INSERT INTO impu (identity, type, service_profile_id, implicit_set_id, psi_activation)
			SELECT '` + psiIMPU + `', 'distinct_psi', p.id, s.id, true FROM service_profile p, s WHERE p.name = 'default'`,
	} {
		if _, err := e.db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// udrData sends a UDR and returns its Sh-Data after checking success.
func udrData(t *testing.T, n *diameter.Node, impu string, refs []uint32, more ...*diam.AVP) *shDoc {
	t.Helper()
	a := send(t, n, shRequest(n, diameter.CmdUserData, impu, refs, more...))
	wantResult(t, a, diameter.DiameterSuccess, false)
	return parseSh(t, a)
}

func sameList(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// UDR IMSPublicIdentity honours Identity-Set (TS 29.329 §6.3.10): all
// identities of the user (default), the registered ones, the implicit
// registration set, its aliases (same service profile); several sets
// each in their element of the Sh-Data extension; an undefined value is
// 5004.
func TestUDRIdentitySets(t *testing.T) {
	e := newEnv(t)
	addAliceIdentities(t, e)
	host := addAS(t, e, "tas", "IMSPublicIdentity=udr")
	tas := e.client(host)
	scscf := e.client(scscfHost)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 1)), diameter.DiameterSuccess, false)

	set := func(v uint32) *diam.AVP { return enum(diameter.AVPIdentitySet, v) }
	pi := []uint32{refPublicIdentity}
	irs := []string{aliceIMPU, aliceTel, aliceOther}
	all := append(slices.Clone(irs), aliceWork)
	for _, c := range []struct {
		name string
		sets []*diam.AVP
		want []string
	}{
		{"default", nil, all},
		{"ALL_IDENTITIES", []*diam.AVP{set(setAll)}, all},
		{"REGISTERED_IDENTITIES", []*diam.AVP{set(setRegistered)}, irs},
		{"IMPLICIT_IDENTITIES", []*diam.AVP{set(setImplicit)}, irs},
		{"ALIAS_IDENTITIES", []*diam.AVP{set(setAlias)}, []string{aliceIMPU, aliceTel}},
	} {
		if d := udrData(t, tas, aliceIMPU, pi, c.sets...); !sameList(d.identities(), c.want...) {
			t.Errorf("%s: %v, want %v\n%s", c.name, d.identities(), c.want, d.raw)
		}
	}
	// aliceWork is not registered: REGISTERED_IDENTITIES asked of it
	// gives alice's registered identities all the same.
	if d := udrData(t, tas, aliceWork, pi, set(setRegistered)); !sameList(d.identities(), irs...) {
		t.Errorf("registered of %s: %v", aliceWork, d.identities())
	}
	d := udrData(t, tas, aliceIMPU, pi, set(setImplicit), set(setAlias))
	if d.Extension == nil || d.Extension.Implicit == nil || d.Extension.Alias == nil ||
		!sameList(d.Extension.Implicit.IMSPublicIdentity, irs...) ||
		!sameList(d.Extension.Alias.IMSPublicIdentity, aliceIMPU, aliceTel) || len(d.identities()) != 0 {
		t.Errorf("two sets:\n%s", d.raw)
	}
	wantResult(t, send(t, tas, shRequest(tas, diameter.CmdUserData, aliceIMPU, pi, set(7))), diameter.DiameterInvalidAVPValue, false)
}

// UDR serves IMSPrivateUserIdentity (33), ChargingInformation, S-CSCFName
// (present and empty when no S-CSCF is assigned), PSIActivation of a PSI,
// MSISDN, and the requesting AS's own iFCs only (TS 29.328 §7.6).
func TestUDRData(t *testing.T) {
	e := newEnv(t)
	addAliceIdentities(t, e)
	host := addAS(t, e, "tas", "IMSPrivateUserIdentity=udr", "ChargingInformation=udr", "S-CSCFName=udr",
		"PSIActivation=udr", "MSISDN=udr", "InitialFilterCriteria=udr")
	addAS(t, e, "other")
	imsctl(t, e, "ifc", "add", "tas-invite", "--as", "tas", "--priority", "3", "--method", "INVITE", "--profile", "default")
	imsctl(t, e, "ifc", "add", "other-invite", "--as", "other", "--priority", "1", "--method", "INVITE", "--profile", "default")
	ctx := context.Background()
	if _, err := e.db.Exec(ctx, `WITH c AS (INSERT INTO charging_function (name, primary_ccf, primary_ecf)
		VALUES ('cf', 'aaa://ccf.`+realm+`', 'aaa://ecf.`+realm+`') RETURNING id)
		UPDATE imsu SET charging_function_id = (SELECT id FROM c)`); err != nil {
		t.Fatal(err)
	}
	tas := e.client(host)

	d := udrData(t, tas, aliceIMPU, []uint32{refPrivateIdentity})
	if d.Extension == nil || !sameList(d.Extension.IMPIs, aliceIMPI) {
		t.Errorf("IMSPrivateUserIdentity:\n%s", d.raw)
	}
	d = udrData(t, tas, aliceIMPU, []uint32{refCharging})
	if d.IMS == nil || d.IMS.ChargingInformation == nil || d.IMS.ChargingInformation.PrimaryCCF != "aaa://ccf."+realm ||
		d.IMS.ChargingInformation.PrimaryECF != "aaa://ecf."+realm {
		t.Errorf("ChargingInformation:\n%s", d.raw)
	}
	d = udrData(t, tas, aliceIMPU, []uint32{refSCSCFName})
	if d.IMS == nil || d.IMS.SCSCFName == nil || *d.IMS.SCSCFName != "" {
		t.Errorf("S-CSCFName before registration:\n%s", d.raw)
	}
	scscf := e.client(scscfHost)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 1)), diameter.DiameterSuccess, false)
	d = udrData(t, tas, aliceIMPU, []uint32{refSCSCFName, refMSISDN})
	if d.IMS == nil || d.IMS.SCSCFName == nil || *d.IMS.SCSCFName != scscfName ||
		d.PublicIdentifiers == nil || !sameList(d.PublicIdentifiers.MSISDN, "15550001") {
		t.Errorf("S-CSCFName and MSISDN after registration:\n%s", d.raw)
	}
	// The SIP form of alice's tel URI (user=phone) is the same identity,
	// as on Cx.
	d = udrData(t, tas, "sip:+15550001@"+realm+";user=phone", []uint32{refMSISDN})
	if d.PublicIdentifiers == nil || !sameList(d.PublicIdentifiers.MSISDN, "15550001") {
		t.Errorf("MSISDN by sip:...;user=phone:\n%s", d.raw)
	}
	d = udrData(t, tas, psiIMPU, []uint32{refPSIActivation})
	if d.IMS == nil || d.IMS.PSIActivation == nil || *d.IMS.PSIActivation != 1 {
		t.Errorf("PSIActivation:\n%s", d.raw)
	}
	wantResult(t, send(t, tas, shRequest(tas, diameter.CmdUserData, aliceIMPU, []uint32{refPSIActivation})),
		diameter.DiameterErrorOperationNotAllowed, true)

	d = udrData(t, tas, aliceIMPU, []uint32{refIFC})
	if d.IMS == nil || d.IMS.IFCs == nil || len(d.IMS.IFCs.IFC) != 1 || d.IMS.IFCs.IFC[0].ServerName != "sip:"+host {
		t.Errorf("iFCs of tas:\n%s", d.raw)
	}
	d = udrData(t, tas, aliceIMPU, []uint32{refIFC}, vs(diameter.AVPServerName, "sip:"+host))
	if d.IMS == nil || d.IMS.IFCs == nil || len(d.IMS.IFCs.IFC) != 1 {
		t.Errorf("iFCs of tas by Server-Name:\n%s", d.raw)
	}
	wantResult(t, send(t, tas, shRequest(tas, diameter.CmdUserData, aliceIMPU, []uint32{refIFC},
		vs(diameter.AVPServerName, "sip:other."+realm))), diameter.DiameterErrorUserDataCannotBeRead, true)
}

// Requests for data the HSS does not hold get the Experimental-Result of
// TS 29.329 §6.2 for the case, and 5102/5103/5104 only when the AS may
// not make the request.
func TestShResultCodes(t *testing.T) {
	e := newEnv(t)
	host := addAS(t, e, "tas", "RepositoryData=udr,pur,snr", "IMSUserState=udr,pur,snr", "MSISDN=udr,snr",
		"LocationInformation=udr", "DSAI=udr", "50=udr,pur,snr")
	tas := e.client(host)
	udr := func(refs []uint32, more ...*diam.AVP) *diam.Message {
		return send(t, tas, shRequest(tas, diameter.CmdUserData, aliceIMPU, refs, more...))
	}
	pur := func(ref uint32) *diam.Message {
		return send(t, tas, shRequest(tas, diameter.CmdProfileUpdate, aliceIMPU, []uint32{ref},
			diameter.NewAVP(diameter.AVPShUserData, datatype.OctetString(
				`<Sh-Data><RepositoryData><ServiceIndication>x</ServiceIndication><SequenceNumber>0</SequenceNumber>`+
					`<ServiceData><a/></ServiceData></RepositoryData></Sh-Data>`))))
	}
	snr := func(ref uint32, more ...*diam.AVP) *diam.Message {
		more = append([]*diam.AVP{enum(diameter.AVPSubsReqType, 0)}, more...)
		return send(t, tas, shRequest(tas, diameter.CmdSubscribeNotifications, aliceIMPU, []uint32{ref}, more...))
	}
	domain := enum(diameter.AVPRequestedDomain, 0)
	si := vs(diameter.AVPServiceIndication, "x")

	for _, c := range []struct {
		name         string
		answer       *diam.Message
		code         uint32
		experimental bool
	}{
		{"UDR of an undefined Data-Reference", udr([]uint32{50}), diameter.DiameterErrorUserDataNotRecognized, true},
		{"UDR of DSAI (not held)", udr([]uint32{refDSAI}), diameter.DiameterErrorUserDataNotRecognized, true},
		{"UDR of LocationInformation", udr([]uint32{refLocation}, domain), diameter.DiameterUserDataNotAvailable, true},
		{"UDR of LocationInformation without Requested-Domain", udr([]uint32{refLocation}), diameter.DiameterMissingAVP, false},
		{"UDR of RepositoryData without Service-Indication", udr([]uint32{refRepositoryData}), diameter.DiameterMissingAVP, false},
		{"UDR of S-CSCFName, not allowed", udr([]uint32{refSCSCFName}), diameter.DiameterErrorUserDataCannotBeRead, true},
		{"UDR of IMSUserState", udr([]uint32{refIMSUserState}), diameter.DiameterSuccess, false},
		{"PUR of an undefined Data-Reference", pur(50), diameter.DiameterErrorUserDataNotRecognized, true},
		{"PUR of IMSUserState (read-only)", pur(refIMSUserState), diameter.DiameterErrorOperationNotAllowed, true},
		{"PUR of RepositoryData", pur(refRepositoryData), diameter.DiameterSuccess, false},
		{"SNR of an undefined Data-Reference", snr(50), diameter.DiameterErrorUserDataNotRecognized, true},
		{"SNR of MSISDN (not notified)", snr(refMSISDN), diameter.DiameterErrorOperationNotAllowed, true},
		{"SNR of S-CSCFName, not allowed", snr(refSCSCFName), diameter.DiameterErrorUserDataCannotBeNotified, true},
		{"SNR of RepositoryData without Service-Indication", snr(refRepositoryData), diameter.DiameterMissingAVP, false},
		{"SNR of RepositoryData", snr(refRepositoryData, si), diameter.DiameterSuccess, false},
		{"SNR with Subs-Req-Type 7", send(t, tas, shRequest(tas, diameter.CmdSubscribeNotifications, aliceIMPU,
			[]uint32{refIMSUserState}, enum(diameter.AVPSubsReqType, 7))), diameter.DiameterInvalidAVPValue, false},
	} {
		if code, exp, ok := diameter.Result(c.answer); !ok || code != c.code || exp != c.experimental {
			t.Errorf("%s: result %d (experimental %v), want %d (experimental %v)", c.name, code, exp, c.code, c.experimental)
		}
	}
}
