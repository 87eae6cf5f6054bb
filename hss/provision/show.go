package provision

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/imscore/imscore/pkg/imsuri"
)

// SubscriberInfo is what "subscriber show/list" print. Secrets (K, OP,
// password, HA1) are reported as present or not, never printed.
type SubscriberInfo struct {
	IMPI           string     `json:"impi"`
	IMSU           string     `json:"imsu"`
	AuthSchemes    []string   `json:"auth_schemes"`
	DefaultScheme  string     `json:"default_scheme,omitempty"`
	HasK           bool       `json:"has_k"`
	OPType         string     `json:"op_type,omitempty"`
	AMF            string     `json:"amf"`
	SQN            int64      `json:"sqn"`
	DigestRealm    string     `json:"digest_realm,omitempty"`
	HasHA1         bool       `json:"has_ha1"`
	PreferredSCSCF string     `json:"preferred_scscf,omitempty"`
	IMPUs          []IMPUInfo `json:"impus"`
}

// IMPUInfo is one IMPU in SubscriberInfo.
type IMPUInfo struct {
	Identity     string `json:"identity"`
	Type         string `json:"type"`
	Barred       bool   `json:"barred"`
	State        string `json:"state"`
	Profile      string `json:"profile"`
	IRS          int64  `json:"implicit_set"`
	SCSCF        string `json:"scscf,omitempty"`
	DiameterHost string `json:"scscf_diameter_host,omitempty"`
}

func (s SubscriberInfo) impuNames() []string {
	var out []string
	for _, u := range s.IMPUs {
		out = append(out, u.Identity)
	}
	return out
}

// WriteText prints s as human-readable lines.
func (s SubscriberInfo) WriteText(w io.Writer) {
	fmt.Fprintf(w, "IMPI %s (IMSU %s)\n", s.IMPI, s.IMSU)
	fmt.Fprintf(w, "  auth schemes: %s (default %s)\n", strings.Join(s.AuthSchemes, ","), s.DefaultScheme)
	if s.HasK {
		fmt.Fprintf(w, "  AKA: K set, %s set, AMF %s, SQN %d (0x%012x)\n", strings.ToUpper(s.OPType), s.AMF, s.SQN, s.SQN)
	}
	if s.HasHA1 {
		fmt.Fprintf(w, "  digest: HA1 set for realm %s\n", s.DigestRealm)
	}
	if s.PreferredSCSCF != "" {
		fmt.Fprintf(w, "  preferred S-CSCF: %s\n", s.PreferredSCSCF)
	}
	for _, u := range s.IMPUs {
		bar := ""
		if u.Barred {
			bar = " BARRED"
		}
		fmt.Fprintf(w, "  IMPU %s type=%s state=%s profile=%s implicit-set=%d%s", u.Identity, u.Type, u.State, u.Profile, u.IRS, bar)
		if u.SCSCF != "" {
			fmt.Fprintf(w, " scscf=%s", u.SCSCF)
		}
		fmt.Fprintln(w)
	}
}

// ShowSubscriber returns the subscriber(s) of id: the IMPI itself, or for
// an IMPU (sip:, sips:, tel:) every IMPI using it.
func ShowSubscriber(ctx context.Context, conn *pgx.Conn, id string) ([]SubscriberInfo, error) {
	var impis []string
	if CheckIMPU(id) == nil {
		id = imsuri.Canonical(id)
		rows, err := conn.Query(ctx, `SELECT i.identity FROM impu u JOIN impi_impu x ON x.impu_id = u.id
			JOIN impi i ON i.id = x.impi_id WHERE u.identity = $1 ORDER BY i.id`, id)
		if err != nil {
			return nil, err
		}
		if impis, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, err
		}
	} else {
		impis = []string{id}
	}
	var out []SubscriberInfo
	for _, impi := range impis {
		in, err := subscriberInfo(ctx, conn, impi)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	if len(out) == 0 {
		return nil, userErr("no subscriber with IMPI or IMPU %s", id)
	}
	return out, nil
}

// ListSubscribers returns every IMPI, ordered by identity.
func ListSubscribers(ctx context.Context, conn *pgx.Conn) ([]SubscriberInfo, error) {
	rows, err := conn.Query(ctx, `SELECT identity FROM impi ORDER BY identity`)
	if err != nil {
		return nil, err
	}
	impis, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := []SubscriberInfo{}
	for _, impi := range impis {
		in, err := subscriberInfo(ctx, conn, impi)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

func subscriberInfo(ctx context.Context, conn *pgx.Conn, impi string) (SubscriberInfo, error) {
	var s SubscriberInfo
	var id int64
	var amf []byte
	err := conn.QueryRow(ctx, `SELECT i.id, i.identity, s.name, i.auth_schemes, coalesce(i.default_scheme, ''), i.k IS NOT NULL,
		coalesce(i.op_type, ''), i.amf, i.sqn, coalesce(i.digest_realm, ''), i.digest_ha1 IS NOT NULL, coalesce(s.preferred_scscf, '')
		FROM impi i JOIN imsu s ON s.id = i.imsu_id WHERE i.identity = $1`, impi).Scan(&id, &s.IMPI, &s.IMSU, &s.AuthSchemes,
		&s.DefaultScheme, &s.HasK, &s.OPType, &amf, &s.SQN, &s.DigestRealm, &s.HasHA1, &s.PreferredSCSCF)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, userErr("no subscriber with IMPI %s", impi)
	}
	if err != nil {
		return s, err
	}
	s.AMF = hex.EncodeToString(amf)
	rows, err := conn.Query(ctx, `SELECT u.identity, u.type, u.barring, u.user_state, p.name, u.implicit_set_id,
		coalesce(a.scscf_name, ''), coalesce(a.diameter_host, '')
		FROM impi_impu x JOIN impu u ON u.id = x.impu_id JOIN service_profile p ON p.id = u.service_profile_id
		LEFT JOIN scscf_assignment a ON a.impu_id = u.id WHERE x.impi_id = $1 ORDER BY u.id`, id)
	if err != nil {
		return s, err
	}
	s.IMPUs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (IMPUInfo, error) {
		var u IMPUInfo
		err := r.Scan(&u.Identity, &u.Type, &u.Barred, &u.State, &u.Profile, &u.IRS, &u.SCSCF, &u.DiameterHost)
		return u, err
	})
	return s, err
}
