package hss_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/userdata"
)

// checkVectors runs the UE side (TS 33.102 §6.3.3) on each vector and
// returns the SQNs.
func checkVectors(t testing.TB, _ *diam.Message, items [][5][]byte) []uint64 {
	t.Helper()
	opc, err := aka.ComputeOPc(mustHex(testK), mustHex(testOP))
	if err != nil {
		t.Fatal(err)
	}
	var sqns []uint64
	for i, it := range items {
		rnd, autn := it[0][:16], it[0][16:]
		res, ck, ik, sqn, err := aka.CheckAUTN(mustHex(testK), opc, rnd, autn)
		if err != nil {
			t.Fatalf("item %d: UE rejects AUTN: %v", i, err)
		}
		if string(res) != string(it[1]) || string(ck) != string(it[2]) || string(ik) != string(it[3]) {
			t.Fatalf("item %d: RES/CK/IK differ from XRES/CK/IK", i)
		}
		sqns = append(sqns, sqn)
	}
	return sqns
}

func TestCxRegistrationFlow(t *testing.T) {
	e := newEnv(t)
	icscf := e.client("icscf." + realm)
	scscf := e.client(scscfHost)

	// First registration: nobody assigned → capabilities.
	a := send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistration))
	wantResult(t, a, diameter.DiameterFirstRegistration, true)
	if diameter.Find(a, diameter.AVPServerCapabilities) == nil || diameter.String(a, diameter.AVPServerCapabilities, diameter.AVPServerName) != scscfName {
		t.Fatalf("UAA without Server-Capabilities/Server-Name: %v", a)
	}
	if v, _ := diameter.Uint32(a, diameter.AVPServerCapabilities, diameter.AVPMandatoryCapability); v != 1 {
		t.Errorf("mandatory capability %d, want 1", v)
	}

	// MAR: 3 AKA vectors that the UE accepts, SQNs increasing.
	a = send(t, scscf, mar(scscf, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 3, nil))
	wantResult(t, a, diameter.DiameterSuccess, false)
	sqns := checkVectors(t, a, items(t, a))
	if len(sqns) != 3 {
		t.Fatalf("%d vectors, want 3", len(sqns))
	}
	for i := 1; i < len(sqns); i++ {
		if sqns[i] <= sqns[i-1] {
			t.Fatalf("SQNs not increasing: %v", sqns)
		}
	}
	if n, _ := diameter.Uint32(a, diameter.AVPSIPNumberAuthItems); n != 3 {
		t.Errorf("SIP-Number-Auth-Items %d", n)
	}
	// Pending assignment: UAR now names the S-CSCF. TS 29.228 §6.1.1.1
	// step 5: not registered but an S-CSCF name stored →
	// DIAMETER_SUBSEQUENT_REGISTRATION + that name.
	a = send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistration))
	wantResult(t, a, diameter.DiameterSubsequentRegistration, true)
	if diameter.String(a, diameter.AVPServerName) != scscfName {
		t.Fatalf("UAA after MAR lacks Server-Name: %v", a)
	}
	// LIR before SAR: not registered, default profile has no services.
	wantResult(t, send(t, icscf, lir(icscf, aliceIMPU)), diameter.DiameterErrorIdentityNotRegistered, true)
	// The same with Originating-Request (an AS originating for the
	// unregistered user, TS 29.228 §6.1.4.1): the pending S-CSCF is named.
	origLIR := lir(icscf, aliceIMPU)
	origLIR.AddAVP(diameter.NewAVP(diameter.AVPOriginatingRequest, datatype.Enumerated(int32(diameter.OriginatingRequestOriginating))))
	a = send(t, icscf, origLIR)
	wantResult(t, a, diameter.DiameterSuccess, false)
	if diameter.String(a, diameter.AVPServerName) != scscfName {
		t.Fatalf("originating LIA lacks the S-CSCF's Server-Name: %v", a)
	}

	// SAR REGISTRATION: user data for the whole IRS.
	a = send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 0))
	wantResult(t, a, diameter.DiameterSuccess, false)
	ud, _ := diameter.AsBytes(diameter.Find(a, diameter.AVPUserData))
	sub, err := userdata.Parse(ud)
	if err != nil {
		t.Fatalf("User-Data does not parse: %v\n%s", err, ud)
	}
	if sub.PrivateID != aliceIMPI || len(sub.PublicIdentities()) != 2 {
		t.Fatalf("user data: %+v", sub)
	}
	if sp, _ := sub.ProfileFor(aliceTel); sp == nil {
		t.Fatalf("tel IMPU of the IRS missing from user data")
	}
	// User-Data-Already-Available: no User-Data.
	a = send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATReRegistration, 1))
	wantResult(t, a, diameter.DiameterSuccess, false)
	if diameter.Find(a, diameter.AVPUserData) != nil {
		t.Errorf("User-Data sent although already available")
	}
	// Registered: UAR subsequent, LIR success, both IMPUs of the IRS.
	for _, u := range []string{aliceIMPU, aliceTel} {
		a = send(t, icscf, uar(icscf, aliceIMPI, u, diameter.UATRegistration))
		wantResult(t, a, diameter.DiameterSubsequentRegistration, true)
		a = send(t, icscf, lir(icscf, u))
		wantResult(t, a, diameter.DiameterSuccess, false)
		if diameter.String(a, diameter.AVPServerName) != scscfName {
			t.Errorf("LIA Server-Name %q", diameter.String(a, diameter.AVPServerName))
		}
	}
	a = send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistrationAndCapabilities))
	wantResult(t, a, diameter.DiameterSuccess, false)
	if diameter.Find(a, diameter.AVPServerCapabilities) == nil {
		t.Errorf("REGISTRATION_AND_CAPABILITIES without Server-Capabilities")
	}
	a = send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATDeRegistration))
	wantResult(t, a, diameter.DiameterSuccess, false)

	// Assignment survives an HSS restart on the same database.
	e.stop()
	e.start()
	icscf = e.client("icscf2." + realm)
	scscf = e.client("scscf2." + realm)
	a = send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistration))
	wantResult(t, a, diameter.DiameterSubsequentRegistration, true)

	// NO_ASSIGNMENT from the serving S-CSCF gives the profile.
	a = send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATNoAssignment, 0))
	wantResult(t, a, diameter.DiameterSuccess, false)

	// User de-registration clears the IRS.
	a = send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATUserDeregistration, 0))
	wantResult(t, a, diameter.DiameterSuccess, false)
	wantResult(t, send(t, icscf, uar(icscf, aliceIMPI, aliceTel, diameter.UATDeRegistration)), diameter.DiameterErrorIdentityNotRegistered, true)
	wantResult(t, send(t, icscf, lir(icscf, aliceIMPU)), diameter.DiameterErrorIdentityNotRegistered, true)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATNoAssignment, 0)), diameter.DiameterUnableToComply, false)

	// Unregistered user (terminating call): assigned, state unregistered.
	a = send(t, scscf, sar(scscf, "", aliceIMPU, diameter.SATUnregisteredUser, 0))
	wantResult(t, a, diameter.DiameterSuccess, false)
	if diameter.Find(a, diameter.AVPUserData) == nil {
		t.Errorf("UNREGISTERED_USER without User-Data")
	}
	a = send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistration))
	wantResult(t, a, diameter.DiameterSubsequentRegistration, true)
	// Another S-CSCF asking for the same unregistered user: already registered.
	other := rebuild(scscf, sar(scscf, "", aliceIMPU, diameter.SATUnregisteredUser, 0), func(x *diam.AVP) *diam.AVP {
		if diameter.AVPServerName.Is(x) {
			return vs(diameter.AVPServerName, "sip:other-scscf."+realm)
		}
		return x
	})
	a = send(t, scscf, other)
	wantResult(t, a, diameter.DiameterErrorIdentityAlreadyRegistered, true)
	if diameter.String(a, diameter.AVPServerName) != scscfName {
		t.Errorf("IDENTITY_ALREADY_REGISTERED without the assigned Server-Name")
	}
	// Timeout de-registration storing the server name keeps it.
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATTimeoutDeregistrationStoreServerName, 0)), diameter.DiameterSuccess, false)
	a = send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistration))
	wantResult(t, a, diameter.DiameterSubsequentRegistration, true)
	if diameter.String(a, diameter.AVPServerName) != scscfName {
		t.Errorf("stored server name not returned")
	}
	// Authentication failure while not registered clears the pending name.
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATAuthenticationFailure, 0)), diameter.DiameterSuccess, false)
	a = send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistration))
	if diameter.Find(a, diameter.AVPServerCapabilities) == nil {
		t.Errorf("after AUTHENTICATION_FAILURE the UAA should offer capabilities: %v", a)
	}
	// Types an IMS HSS does not serve.
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATPGWUpdate, 0)), diameter.DiameterErrorInAssignmentType, true)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, 99, 0)), diameter.DiameterInvalidAVPValue, false)
}

// items returns SIP-Authenticate, SIP-Authorization, CK, IK of each item.
func items(t testing.TB, m *diam.Message) [][5][]byte {
	t.Helper()
	var out [][5][]byte
	for _, it := range diameter.FindAll(m, diameter.AVPSIPAuthDataItem) {
		get := func(code diameter.AVPCode) []byte {
			x := diameter.FindIn([]*diam.AVP{it}, diameter.AVPSIPAuthDataItem, code)
			if len(x) == 0 {
				t.Fatalf("SIP-Auth-Data-Item without AVP %d", code)
			}
			b, _ := diameter.AsBytes(x[0])
			return b
		}
		out = append(out, [5][]byte{get(diameter.AVPSIPAuthenticate), get(diameter.AVPSIPAuthorization),
			get(diameter.AVPConfidentialityKey), get(diameter.AVPIntegrityKey)})
	}
	return out
}

func TestCxErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client("icscf." + realm)
	wantResult(t, send(t, c, uar(c, "nobody@"+realm, aliceIMPU, 0)), diameter.DiameterErrorUserUnknown, true)
	wantResult(t, send(t, c, uar(c, aliceIMPI, "sip:nobody@"+realm, 0)), diameter.DiameterErrorUserUnknown, true)
	wantResult(t, send(t, c, uar(c, bobIMPI, aliceIMPU, 0)), diameter.DiameterErrorIdentitiesDontMatch, true)
	wantResult(t, send(t, c, mar(c, bobIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil)), diameter.DiameterErrorIdentitiesDontMatch, true)
	wantResult(t, send(t, c, lir(c, "sip:nobody@"+realm)), diameter.DiameterErrorUserUnknown, true)
	// The same telephone number as a SIP URI with user=phone, or with
	// visual separators, is the same IMPU (TS 24.229 §5.3.2.1, RFC 3261
	// §19.1.6): not registered (5003), not unknown (5001).
	for _, alias := range []string{"sip:+15550001@" + realm + ";user=phone", "tel:+1-555-0001"} {
		wantResult(t, send(t, c, lir(c, alias)), diameter.DiameterErrorIdentityNotRegistered, true)
		wantResult(t, send(t, c, uar(c, aliceIMPI, alias, 0)), diameter.DiameterFirstRegistration, true)
	}
	wantResult(t, send(t, c, lir(c, "sip:+15550001@"+realm)), diameter.DiameterErrorUserUnknown, true) // a user name, not a number

	// A barred IMPU whose implicit set holds a non-barred one registers
	// (TS 29.228 §6.1.1.1 step 3; a USIM-only UE's barred temporary IMPU);
	// when the whole set is barred → DIAMETER_AUTHORIZATION_REJECTED.
	if _, err := e.db.Exec(ctx, `UPDATE impu SET barring = true WHERE identity = $1`, aliceTel); err != nil {
		t.Fatal(err)
	}
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceTel, 0)), diameter.DiameterFirstRegistration, true)
	if _, err := e.db.Exec(ctx, `UPDATE impu SET barring = true WHERE identity = $1`, aliceIMPU); err != nil {
		t.Fatal(err)
	}
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceTel, 0)), diameter.DiameterAuthorizationRejected, false)
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceIMPU, 0)), diameter.DiameterAuthorizationRejected, false)
	if _, err := e.db.Exec(ctx, `UPDATE impu SET barring = false WHERE identity = $1`, aliceIMPU); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `UPDATE impu SET barring = false, can_register = false WHERE identity = $1`, aliceTel); err != nil {
		t.Fatal(err)
	}
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceTel, 0)), diameter.DiameterAuthorizationRejected, false)
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceTel, diameter.UATRegistrationAndCapabilities)), diameter.DiameterAuthorizationRejected, false)
	// A PSI never registers (TS 29.228 §6.1.1.1 step 3): REGISTRATION and
	// REGISTRATION_AND_CAPABILITIES → 5003 AUTHORIZATION_REJECTED; a
	// DE_REGISTRATION query is not an authorisation: IDENTITY_NOT_REGISTERED.
	if _, err := e.db.Exec(ctx, `UPDATE impu SET can_register = true, type = 'distinct_psi' WHERE identity = $1`, aliceTel); err != nil {
		t.Fatal(err)
	}
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceTel, diameter.UATRegistration)), diameter.DiameterAuthorizationRejected, false)
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceTel, diameter.UATRegistrationAndCapabilities)), diameter.DiameterAuthorizationRejected, false)
	wantResult(t, send(t, c, uar(c, aliceIMPI, aliceTel, diameter.UATDeRegistration)), diameter.DiameterErrorIdentityNotRegistered, true)
	// REGISTRATION_AND_CAPABILITIES for a not-registered user: 2001
	// DIAMETER_SUCCESS (Result-Code) + Server-Capabilities, no Server-Name.
	a := send(t, c, uar(c, aliceIMPI, aliceIMPU, diameter.UATRegistrationAndCapabilities))
	wantResult(t, a, diameter.DiameterSuccess, false)
	if diameter.Find(a, diameter.AVPServerCapabilities) == nil || diameter.Find(a, diameter.AVPServerName) != nil {
		t.Fatalf("REGISTRATION_AND_CAPABILITIES: %v", a)
	}

	// Roaming: a visited network not allowed for the subscription.
	r := rebuild(c, uar(c, aliceIMPI, aliceIMPU, 0), func(x *diam.AVP) *diam.AVP {
		if diameter.AVPVisitedNetworkIdentifier.Is(x) {
			return diameter.NewAVP(diameter.AVPVisitedNetworkIdentifier, datatype.OctetString("ims.mnc099.mcc999.3gppnetwork.org"))
		}
		return x
	})
	wantResult(t, send(t, c, r), diameter.DiameterErrorRoamingNotAllowed, true)

	// Missing mandatory AVP → 5005 with Failed-AVP.
	r = rebuild(c, uar(c, aliceIMPI, aliceIMPU, 0), func(x *diam.AVP) *diam.AVP {
		if diameter.AVPPublicIdentity.Is(x) {
			return nil
		}
		return x
	})
	a = send(t, c, r)
	wantResult(t, a, diameter.DiameterMissingAVP, false)
	if diameter.Find(a, diameter.AVPFailedAVP, diameter.AVPPublicIdentity) == nil {
		t.Errorf("5005 without Failed-AVP/Public-Identity: %v", a)
	}

	// Unknown command (RTR is sent by the HSS, not served) → 3001.
	rtr := c.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, realm, hssHost)
	a = send(t, c, rtr)
	wantResult(t, a, diameter.DiameterCommandUnsupported, false)

	// Scheme not allowed for the IMPI / unknown scheme → 5006.
	wantResult(t, send(t, c, mar(c, bobIMPI, bobIMPU, "Digest-AKAv1-MD5", 1, nil)), diameter.DiameterErrorAuthSchemeNotSupported, true)
	wantResult(t, send(t, c, mar(c, aliceIMPI, aliceIMPU, "SIP Digest", 1, nil)), diameter.DiameterErrorAuthSchemeNotSupported, true)
	wantResult(t, send(t, c, mar(c, aliceIMPI, aliceIMPU, "NASS-Bundled", 1, nil)), diameter.DiameterErrorAuthSchemeNotSupported, true)
}

func TestMARDigestAndUnknownScheme(t *testing.T) {
	e := newEnv(t)
	c := e.client(scscfHost)
	a := send(t, c, mar(c, bobIMPI, bobIMPU, "SIP Digest", 1, nil))
	wantResult(t, a, diameter.DiameterSuccess, false)
	ha1 := diameter.String(a, diameter.AVPSIPAuthDataItem, diameter.AVPSIPDigestAuthenticate, diameter.AVPDigestHA1)
	if want := provision.HA1(bobIMPI, realm, "secret"); ha1 != want {
		t.Fatalf("Digest-HA1 %q, want %q", ha1, want)
	}
	if q := diameter.String(a, diameter.AVPSIPAuthDataItem, diameter.AVPSIPDigestAuthenticate, diameter.AVPDigestQoP); q != "auth" {
		t.Errorf("Digest-QoP %q", q)
	}
	// Unknown → the IMPI's scheme.
	a = send(t, c, mar(c, bobIMPI, bobIMPU, "Unknown", 1, nil))
	wantResult(t, a, diameter.DiameterSuccess, false)
	if diameter.String(a, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthenticationScheme) != "SIP Digest" {
		t.Errorf("Unknown scheme for digest user answered %v", a)
	}
	a = send(t, c, mar(c, aliceIMPI, aliceIMPU, "Unknown", 2, nil))
	wantResult(t, a, diameter.DiameterSuccess, false)
	if diameter.String(a, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthenticationScheme) != "Digest-AKAv1-MD5" {
		t.Errorf("Unknown scheme for AKA user answered %v", a)
	}
	checkVectors(t, a, items(t, a))
	// Scheme names regardless of case: Kamailio's S-CSCF sends "unknown"
	// when the UE names no algorithm, and others "digest-akav1-md5".
	for _, sc := range []string{"unknown", "UNKNOWN", "digest-akav1-md5"} {
		a = send(t, c, mar(c, aliceIMPI, aliceIMPU, sc, 1, nil))
		wantResult(t, a, diameter.DiameterSuccess, false)
		if got := diameter.String(a, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthenticationScheme); got != "Digest-AKAv1-MD5" {
			t.Errorf("scheme %q for AKA user answered %q", sc, got)
		}
	}
	a = send(t, c, mar(c, bobIMPI, bobIMPU, "sip digest", 1, nil))
	wantResult(t, a, diameter.DiameterSuccess, false)
	// More than the maximum (8 in tests) is capped.
	a = send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 50, nil))
	if n := len(items(t, a)); n != 8 {
		t.Errorf("%d vectors for 50 asked, want the cap 8", n)
	}
}

func TestMARConcurrentSQNsUnique(t *testing.T) {
	e := newEnv(t)
	const clients, perClient = 8, 15
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	errs := make(chan string, clients*perClient)
	for i := 0; i < clients; i++ {
		n := e.client("scscf" + string(rune('a'+i)) + "." + realm)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perClient; j++ {
				a := send(t, n, mar(n, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 2, nil))
				if !diameter.IsSuccess(a) {
					errs <- "MAA not successful"
					return
				}
				sq := checkVectors(t, a, items(t, a))
				mu.Lock()
				for _, s := range sq {
					if seen[s] {
						errs <- "SQN reused"
					}
					seen[s] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if len(seen) != clients*perClient*2 {
		t.Fatalf("%d distinct SQNs, want %d", len(seen), clients*perClient*2)
	}
}

func TestMARResync(t *testing.T) {
	e := newEnv(t)
	c := e.client(scscfHost)
	a := send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil))
	it := items(t, a)[0]
	rnd := it[0][:16]
	opc, _ := aka.ComputeOPc(mustHex(testK), mustHex(testOP))
	const sqnMS = 0x1000 << aka.INDBits // the UE is far ahead
	auts, err := aka.GenerateAUTS(mustHex(testK), opc, rnd, sqnMS)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupted AUTS (MAC-S fails): TS 29.228 §6.3.1 / TS 33.102 §6.3.5 —
	// DIAMETER_SUCCESS with fresh vectors from the counter as it was (no
	// reset to SQN_MS).
	bad := append(append([]byte{}, rnd...), auts...)
	bad[len(bad)-1] ^= 1
	a = send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, bad))
	wantResult(t, a, diameter.DiameterSuccess, false)
	got := checkVectors(t, a, items(t, a))
	if len(got) != 1 || got[0] >= sqnMS {
		t.Fatalf("SQNs %#x after a bad AUTS: the counter was reset towards SQN_MS %#x", got, uint64(sqnMS))
	}
	// Malformed SIP-Authorization (not RAND||AUTS): 5004 INVALID_AVP_VALUE.
	a = send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, []byte("short")))
	wantResult(t, a, diameter.DiameterInvalidAVPValue, false)
	// Resync from an S-CSCF other than the stored one: 5012, the stored
	// name is not overwritten (§6.3.1, §8.1), the SQN is not reset.
	other := rebuild(c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, append(append([]byte{}, rnd...), auts...)), func(x *diam.AVP) *diam.AVP {
		if diameter.AVPServerName.Is(x) {
			return vs(diameter.AVPServerName, "sip:other-scscf."+realm)
		}
		return x
	})
	wantResult(t, send(t, c, other), diameter.DiameterUnableToComply, false)
	icscf := e.client("icscf." + realm)
	ua := send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATRegistration))
	if diameter.String(ua, diameter.AVPServerName) != scscfName {
		t.Fatalf("resync from another S-CSCF overwrote the stored name: %v", ua)
	}
	// Good AUTS: fresh vectors above SQN_MS.
	a = send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 2, append(append([]byte{}, rnd...), auts...)))
	wantResult(t, a, diameter.DiameterSuccess, false)
	for _, s := range checkVectors(t, a, items(t, a)) {
		if s <= sqnMS {
			t.Fatalf("SQN %#x after resync with SQN_MS %#x", s, uint64(sqnMS))
		}
	}
}
