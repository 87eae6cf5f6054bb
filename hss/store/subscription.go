package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Subscription is what the HSS knows to build the IMSSubscription user
// data of TS 29.228 Annex B/D (the User-Data AVP of SAA and PPR): the
// private identity and the service profiles of one implicit registration
// set with their public identities and iFCs.
type Subscription struct {
	PrivateID string // IMPI, "" when the request named none
	IRSID     int64
	Profiles  []ServiceProfile // ordered by profile id
	// Charging-Information (TS 29.228 §6.1.2, TS 29.229 §6.3.19) of the
	// IMSU, or of the first profile that has one; nil when none.
	Charging *ChargingInfo
}

// ServiceProfile is one ServiceProfile element.
type ServiceProfile struct {
	ID                       int64
	Name                     string
	SubscribedMediaProfileID *int32 // CoreNetworkServicesAuthorization, nil = absent
	PublicIdentities         []PublicIdentity
	IFCs                     []IFC   // ordered by priority, then id
	SharedIFCSetIDs          []int32 // Extension/SharedIFCSetID
}

// PublicIdentity is one PublicIdentity element.
type PublicIdentity struct {
	Identity    string // as provisioned; for wildcards the !...! form
	Type        IdentityType
	Barring     bool
	DisplayName string
	// WildcardedIdentity: true for wildcarded PSI/IMPU, whose Identity goes
	// into Extension/WildcardedPSI or WildcardedIMPU (TS 29.228 Annex D).
	Wildcarded bool
}

// IFC is one InitialFilterCriteria element.
type IFC struct {
	ID                   int64
	Name                 string
	Priority             int32  // profile override, else the iFC's own
	ProfilePartIndicator *int16 // nil absent, 0 REGISTERED, 1 UNREGISTERED
	// TriggerPoint; nil when the iFC has no SPT (it then always matches).
	TriggerPoint      *TriggerPoint
	ApplicationServer ApplicationServer
}

// TriggerPoint: ConditionTypeCNF and SPTs grouped by Group.
type TriggerPoint struct {
	ConditionTypeCNF bool
	SPTs             []SPT // ordered by group, then id
}

// SPTType is the kind of Service Point Trigger.
type SPTType string

// SPT kinds as stored in spt.type.
const (
	SPTMethod             SPTType = "method"
	SPTRequestURI         SPTType = "request_uri"
	SPTSIPHeader          SPTType = "sip_header"
	SPTSessionCase        SPTType = "session_case"
	SPTSessionDescription SPTType = "session_description"
)

// SPT is one Service Point Trigger (TS 29.228 Annex B.2.2 / C).
type SPT struct {
	Group            int32
	ConditionNegated bool
	Type             SPTType
	// Method name; Request-URI regexp; header name; session case digit
	// 0..4; SDP line name.
	Value string
	// Header or SDP line content regexp ("" = presence only).
	Content string
	// RegistrationType values (0 INITIAL, 1 RE, 2 DE) for Method REGISTER.
	RegistrationTypes []int16
}

// ApplicationServer is an AS as referenced by an iFC, with its Sh access.
type ApplicationServer struct {
	ID                      int64
	Name                    string
	ServerName              string // SIP URI
	DefaultHandling         int16  // 0 SESSION_CONTINUED, 1 SESSION_TERMINATED
	ServiceInfo             string
	IncludeRegisterRequest  bool
	IncludeRegisterResponse bool
	DiameterHost            string // Sh Origin-Host, "" = none
}

// ChargingInfo are the charging function addresses (TS 29.229 §6.3.19).
type ChargingInfo struct {
	PrimaryCCF, SecondaryCCF, PrimaryECF, SecondaryECF string
}

// SubscriptionData gathers the user profile for SAA/PPR (TS 29.228
// §6.1.2, §6.1.3; user data per Annex B/D): the implicit registration set
// of impu (wildcard matching as LookupIMPU), its service profiles with
// their public identities (barring, display names, types), iFCs with
// trigger points and application servers, and shared iFC set ids, with
// two statements (IMPU look-up, then SubscriptionIRS's). impi is
// the IMPI to report ("" for none); ErrNotFound when impu, or a non-empty
// impi, is unknown.
func (s *Store) SubscriptionData(ctx context.Context, impi, impu string) (sub *Subscription, err error) {
	err = s.conn(ctx, "SubscriptionData", func(c *pgx.Conn) error {
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		sub, _, err = subscriptionIRS(ctx, c, impi, u.IRSID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}
