package hss

// The provisioning REST API and web console (hss/api) on their own
// listener, and the operations they run through the HSS-initiated Cx
// procedures (hss/cx: RTR, PPR).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/api"
	"github.com/imscore/imscore/hss/cx"
	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/admin"
	"github.com/imscore/imscore/pkg/config"
)

// apiFlags are the flags of the API and console.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		config.String("HSS", "api-listen", "", "address of the provisioning REST API and web console (empty: off)"),
		config.String("HSS", "api-tokens-file", "", "bearer tokens of the API, one per line: ROLE TOKEN [NAME], ROLE read or admin"),
		config.String("HSS", "api-admin-token", "", "a bearer token of role admin (besides --api-tokens-file; at least 16 characters)"),
		config.String("HSS", "api-read-token", "", "a bearer token of role read (read-only)"),
		config.String("HSS", "api-tls-cert", "", "PEM certificate: the API and console serve HTTPS (with --api-tls-key)"),
		config.String("HSS", "api-tls-key", "", "PEM private key of --api-tls-cert"),
		config.Int("HSS", "api-db-conns", 4, "PostgreSQL connections of the API and console (apart from the Cx/Sh pool)"),
	}
}

// apiTokens reads the tokens the flags give.
func apiTokens(c *cli.Context) (*api.Tokens, error) {
	t := &api.Tokens{}
	if f := c.String("api-tokens-file"); f != "" {
		if err := t.ReadTokenFile(f); err != nil {
			return nil, fmt.Errorf("--api-tokens-file: %w", err)
		}
	}
	if v := c.String("api-admin-token"); v != "" {
		if err := t.Add(v, api.RoleAdmin, "admin"); err != nil {
			return nil, fmt.Errorf("--api-admin-token: %w", err)
		}
	}
	if v := c.String("api-read-token"); v != "" {
		if err := t.Add(v, api.RoleRead, "read"); err != nil {
			return nil, fmt.Errorf("--api-read-token: %w", err)
		}
	}
	return t, nil
}

func validateAPI(c *cli.Context) error {
	if c.String("api-listen") == "" {
		return nil
	}
	t, err := apiTokens(c)
	if err != nil {
		return err
	}
	if t.Len() == 0 {
		return errors.New("--api-listen needs a token: --api-tokens-file, --api-admin-token or --api-read-token")
	}
	if (c.String("api-tls-cert") == "") != (c.String("api-tls-key") == "") {
		return errors.New("--api-tls-cert and --api-tls-key go together")
	}
	return nil
}

// LabAdminToken is the admin token docker-compose.yml and .env.example
// give the provisioning API by default (docs/provisioning.md); the HSS
// prints it at start when it is in use.
const LabAdminToken = "imscore-lab-admin-token"

// startAPI serves the API and console on --api-listen until ctx ends.
func startAPI(ctx context.Context, c *cli.Context, s *Server, rt *config.Runtime) error {
	addr := c.String("api-listen")
	if addr == "" {
		return nil
	}
	tokens, err := apiTokens(c)
	if err != nil {
		return err
	}
	pc, err := pgxpool.ParseConfig(c.String("database-url"))
	if err != nil {
		return err
	}
	pc.MaxConns = int32(max(1, c.Int("api-db-conns")))
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return err
	}
	if err := admin.RegisterPool(rt.Admin.Registry, "hss_api", pool); err != nil {
		pool.Close()
		return err
	}
	cert, key := c.String("api-tls-cert"), c.String("api-tls-key")
	srv, err := api.New(api.Config{DB: pool, Ops: apiOps{s: s, db: pool}, Tokens: tokens, Log: rt.Log.Named("api"),
		Registry: rt.Admin.Registry, Secure: cert != ""})
	if err != nil {
		pool.Close()
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pool.Close()
		return fmt.Errorf("hss: api listen %s: %w", addr, err)
	}
	scheme := "http"
	if cert != "" {
		scheme = "https"
	}
	rt.Log.Info("serving the provisioning API and console", zap.String("url", fmt.Sprintf("%s://%s/", scheme, ln.Addr())),
		zap.Int("tokens", tokens.Len()))
	if c.String("api-admin-token") == LabAdminToken {
		// The published default of docker-compose.yml and .env.example:
		// printed so that a lab user finds it, and flagged, since anyone
		// who read the README knows it.
		rt.Log.Warn("the provisioning API accepts the lab's published admin token; set HSS_API_ADMIN_TOKEN (or --api-admin-token, --api-tokens-file) outside a lab",
			zap.String("lab_token", LabAdminToken), zap.String("console", fmt.Sprintf("%s://%s/console/", scheme, ln.Addr())))
	}
	go func() {
		defer pool.Close()
		if err := srv.Serve(ctx, ln, cert, key); err != nil {
			rt.Log.Error("provisioning API stopped", zap.Error(err))
		}
	}()
	return nil
}

// apiOps runs the API's operations with the HSS's Cx procedures; what
// cannot be sent now is queued in hss_command for the command worker.
type apiOps struct {
	s  *Server
	db provision.DB
}

// operationTimeout bounds one RTR or PPR of the API.
const operationTimeout = 10 * time.Second

func (o apiOps) Deregister(ctx context.Context, impu, reason string) api.Outcome {
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	err := o.s.Cx.SendRTR(ctx, impu, cx.ReasonCode(reason), reason)
	return o.outcome(ctx, "RTR", impu, err, func() (int64, error) { return provision.Deregister(ctx, o.db, impu, reason) })
}

func (o apiOps) PushProfile(ctx context.Context, impu string) api.Outcome {
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	err := o.s.Cx.SendPPR(ctx, impu)
	return o.outcome(ctx, "PPR", impu, err, func() (int64, error) { return provision.PushProfile(ctx, o.db, impu) })
}

// outcome classifies the result of an RTR/PPR as the command worker does
// (runCommands) and queues what may succeed later.
func (o apiOps) outcome(ctx context.Context, cmd, impu string, err error, queue func() (int64, error)) api.Outcome {
	out := api.Outcome{IMPU: impu}
	var ae *cx.AnswerError
	switch {
	case err == nil:
		out.Result = "answered"
	case errors.Is(err, cx.ErrNotAssigned), errors.Is(err, store.ErrNotFound):
		out.Result, out.Detail = "not_registered", "no S-CSCF assigned"
	case errors.As(err, &ae) && !ae.Transient():
		out.Result, out.Detail = "refused", err.Error()
	default:
		id, qerr := queue()
		if qerr != nil {
			out.Err = fmt.Errorf("%s for %s: %v; queueing it: %w", cmd, impu, err, qerr)
			return out
		}
		out.Result, out.Detail = "queued", fmt.Sprintf("hss_command %d: %v", id, err)
	}
	label := map[string]string{"answered": "answered", "not_registered": "nothing_to_send", "refused": "refused", "queued": "retry"}[out.Result]
	o.s.commands.WithLabelValues(cmd, label).Inc()
	o.s.log.Info("api operation", zap.String("command", cmd), zap.String("impu", impu), zap.String("result", out.Result),
		zap.String("detail", out.Detail))
	return out
}
