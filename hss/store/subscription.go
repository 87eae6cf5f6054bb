package store

import (
	"context"
	"sort"

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
// trigger points and application servers, and shared iFC set ids. impi is
// the IMPI to report ("" for none); ErrNotFound when impu, or a non-empty
// impi, is unknown.
func (s *Store) SubscriptionData(ctx context.Context, impi, impu string) (sub *Subscription, err error) {
	err = s.tx(ctx, "SubscriptionData", func(tx pgx.Tx) error {
		// One REPEATABLE READ snapshot would be stricter; a plain
		// transaction keeps the queries on one connection.
		u, err := lookupIMPU(ctx, tx, impu, false)
		if err != nil {
			return err
		}
		sub = &Subscription{PrivateID: impi, IRSID: u.IRSID}
		var imsuCF *int64
		if impi != "" {
			if err := tx.QueryRow(ctx, `SELECT s.charging_function_id FROM impi i JOIN imsu s ON s.id = i.imsu_id
				WHERE i.identity = $1`, impi).Scan(&imsuCF); err != nil {
				return err
			}
		}
		members, err := collectIMPUs(tx.Query(ctx, `SELECT `+impuCols+impuFrom+`WHERE u.implicit_set_id = $1 ORDER BY u.id`, u.IRSID))
		if err != nil {
			return err
		}
		byProfile := map[int64]*ServiceProfile{}
		var order []int64
		for _, m := range members {
			sp := byProfile[m.ServiceProfileID]
			if sp == nil {
				sp = &ServiceProfile{ID: m.ServiceProfileID, Name: m.ServiceProfile}
				byProfile[m.ServiceProfileID] = sp
				order = append(order, m.ServiceProfileID)
			}
			sp.PublicIdentities = append(sp.PublicIdentities, PublicIdentity{
				Identity: m.Identity, Type: m.Type, Barring: m.Barring, DisplayName: m.DisplayName,
				Wildcarded: m.Type == WildcardedPSI || m.Type == WildcardedIMPU,
			})
		}
		sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
		var profileCF *int64
		for _, id := range order {
			sp := byProfile[id]
			var cf *int64
			if err := tx.QueryRow(ctx, `SELECT subscribed_media_profile_id, charging_function_id FROM service_profile WHERE id = $1`,
				id).Scan(&sp.SubscribedMediaProfileID, &cf); err != nil {
				return err
			}
			if profileCF == nil {
				profileCF = cf
			}
			if sp.IFCs, err = profileIFCs(ctx, tx, id); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT shared_ifc_set_id FROM service_profile_shared_ifc_set
				WHERE service_profile_id = $1 ORDER BY shared_ifc_set_id`, id)
			if err != nil {
				return err
			}
			sp.SharedIFCSetIDs, err = pgx.CollectRows(rows, pgx.RowTo[int32])
			if err != nil {
				return err
			}
			sub.Profiles = append(sub.Profiles, *sp)
		}
		cf := imsuCF
		if cf == nil {
			cf = profileCF
		}
		if cf != nil {
			var ci ChargingInfo
			if err := tx.QueryRow(ctx, `SELECT coalesce(primary_ccf, ''), coalesce(secondary_ccf, ''),
				coalesce(primary_ecf, ''), coalesce(secondary_ecf, '') FROM charging_function WHERE id = $1`, *cf).Scan(
				&ci.PrimaryCCF, &ci.SecondaryCCF, &ci.PrimaryECF, &ci.SecondaryECF); err != nil {
				return err
			}
			sub.Charging = &ci
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

func profileIFCs(ctx context.Context, tx pgx.Tx, profileID int64) ([]IFC, error) {
	rows, err := tx.Query(ctx, `SELECT f.id, f.name, coalesce(x.priority, f.priority), f.profile_part_indicator,
			f.condition_type_cnf, a.id, a.name, a.server_name, a.default_handling, coalesce(a.service_info, ''),
			a.include_register_request, a.include_register_response, coalesce(a.diameter_host, '')
		FROM service_profile_ifc x JOIN ifc f ON f.id = x.ifc_id JOIN application_server a ON a.id = f.application_server_id
		WHERE x.service_profile_id = $1 ORDER BY 3, f.id`, profileID)
	if err != nil {
		return nil, err
	}
	var out []IFC
	var cnf []bool
	for rows.Next() {
		var f IFC
		var c bool
		a := &f.ApplicationServer
		if err := rows.Scan(&f.ID, &f.Name, &f.Priority, &f.ProfilePartIndicator, &c, &a.ID, &a.Name, &a.ServerName,
			&a.DefaultHandling, &a.ServiceInfo, &a.IncludeRegisterRequest, &a.IncludeRegisterResponse, &a.DiameterHost); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, f)
		cnf = append(cnf, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		spts, err := ifcSPTs(ctx, tx, out[i].ID)
		if err != nil {
			return nil, err
		}
		if len(spts) > 0 {
			out[i].TriggerPoint = &TriggerPoint{ConditionTypeCNF: cnf[i], SPTs: spts}
		}
	}
	return out, nil
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func ifcSPTs(ctx context.Context, q queryer, ifcID int64) ([]SPT, error) {
	rows, err := q.Query(ctx, `SELECT group_id, condition_negated, type, value, coalesce(content, ''), registration_types
		FROM spt WHERE ifc_id = $1 ORDER BY group_id, id`, ifcID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SPT
	for rows.Next() {
		var s SPT
		var t string
		if err := rows.Scan(&s.Group, &s.ConditionNegated, &t, &s.Value, &s.Content, &s.RegistrationTypes); err != nil {
			return nil, err
		}
		s.Type = SPTType(t)
		out = append(out, s)
	}
	return out, rows.Err()
}
