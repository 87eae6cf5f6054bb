package provision

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/imscore/imscore/pkg/imsuri"
)

// Deregister records a request for the HSS to send RTR for impu
// (TS 29.228 §6.1.2) in hss_command; the insert trigger NOTIFYs channel
// hss_commands with the command id, and the running HSS sends it. The
// IMPU must exist (NotFound otherwise).
func Deregister(ctx context.Context, db DB, impu, reason string) (id int64, err error) {
	return queueCommand(ctx, db, "rtr", impu, reason)
}

// PushProfile records a request for the HSS to send PPR with the current
// user data of impu's implicit registration set (TS 29.228 §6.2.2) in
// hss_command. The IMPU must exist; the HSS skips it when no S-CSCF is
// assigned.
func PushProfile(ctx context.Context, db DB, impu string) (id int64, err error) {
	return queueCommand(ctx, db, "ppr", impu, "")
}

// PushProfileOf queues one PPR per implicit registration set that uses the
// service profile name and has an S-CSCF assigned (after the profile or its
// iFCs changed). It returns the command ids; none when nobody is assigned.
func PushProfileOf(ctx context.Context, db DB, name string) ([]int64, error) {
	var exists bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM service_profile WHERE name = $1)`, name).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, notFound("/profile", "service profile %s does not exist", name)
	}
	rows, err := db.Query(ctx, `
		INSERT INTO hss_command (kind, impu, reason)
		SELECT DISTINCT ON (u.implicit_set_id) 'ppr', u.identity, 'profile ' || $1
		  FROM impu u
		  JOIN service_profile p ON p.id = u.service_profile_id
		  JOIN scscf_assignment a ON a.impu_id = u.id
		 WHERE p.name = $1
		 ORDER BY u.implicit_set_id, u.id
		RETURNING id`, name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// IMPUExists reports whether the public identity impu (in any of its
// forms, imsuri.Canonical) is provisioned, and its stored form.
func IMPUExists(ctx context.Context, db DB, impu string) (stored string, err error) {
	impu = imsuri.Canonical(impu)
	err = db.QueryRow(ctx, `SELECT identity FROM impu WHERE identity = $1`, impu).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", notFound("/impu", "IMPU %s does not exist", impu)
	}
	return stored, err
}

func queueCommand(ctx context.Context, db DB, kind, impu, reason string) (id int64, err error) {
	if impu, err = IMPUExists(ctx, db, impu); err != nil {
		return 0, err
	}
	err = db.QueryRow(ctx, `INSERT INTO hss_command (kind, impu, reason) VALUES ($1, $2, $3) RETURNING id`, kind, impu, reason).Scan(&id)
	return id, err
}
