package hss

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/cx"
	"github.com/imscore/imscore/hss/sh"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/admin"
	"github.com/imscore/imscore/pkg/diameter"
)

// Config configures an HSS Server.
type Config struct {
	DiameterListen string   // TCP address, e.g. "127.0.0.1:3868"
	OriginHost     string   // Diameter identity, default "hss." + Realm
	Realm          string   // Diameter realm / home domain
	AllowedPeers   []string // Origin-Hosts accepted (I-/S-CSCF, Sh ASes)
	AcceptAnyPeer  bool     // lab mode: accept every peer
	DatabaseURL    string
	DBConns        int // pool size; 0 means DefaultDBConns()
	MaxAuthItems   int // cap of SIP-Number-Auth-Items, default 5
	// SQNBlock is the number of SQNs reserved per IMPI with one durable
	// write (store.EnableSQNBlocks); 0 means DefaultSQNBlock, 1 one write
	// per MAR.
	SQNBlock      int
	SQNCacheIMPIs int // IMPIs whose unused SQNs are kept, default store.DefaultSQNCacheIMPIs
	// UserDataCache is the number of IMPI/IMPU pairs whose assembled user
	// data SAR keeps (store.EnableUserDataCache, invalidated through
	// LISTEN/NOTIFY); 0 means store.DefaultUserDataCacheEntries, < 0 off.
	UserDataCache int
	// GroupCommitLanes is the number of workers that send the Cx hot
	// path's statements of concurrent requests as one batch and one
	// commit (store.EnableGroupCommit); 0 means DefaultGroupCommitLanes,
	// < 0 off (one statement per request).
	GroupCommitLanes int
	RequestTimeout   time.Duration // per request database budget, default 2s time.Duration // per request database budget, default 2s
	PollInterval     time.Duration // hss_command poll period, default 5s
	Logger           *zap.Logger
	Registry         prometheus.Registerer // nil: metrics not registered
}

// DefaultGroupCommitLanes is the default of Config.GroupCommitLanes and
// --group-commit-lanes.
const DefaultGroupCommitLanes = 2

// DefaultSQNBlock is the default of Config.SQNBlock and --sqn-block.
const DefaultSQNBlock = 16

// Server is a running HSS: a Diameter node serving Cx and Sh on the store,
// plus the hss_command worker that sends RTR and PPR.
type Server struct {
	cfg   Config
	log   *zap.Logger
	Store *store.Store
	Node  *diameter.Node
	Cx    *cx.Server
	Sh    *sh.Server
	addr  net.Addr

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	commands *prometheus.CounterVec // HSS-initiated RTR/PPR by outcome

	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
}

var cmdNames = map[uint32]string{
	diameter.CmdUserAuthorization: "UAR", diameter.CmdMultimediaAuth: "MAR",
	diameter.CmdServerAssignment: "SAR", diameter.CmdLocationInfo: "LIR",
	diameter.CmdUserData: "UDR", diameter.CmdProfileUpdate: "PUR",
	diameter.CmdSubscribeNotifications: "SNR",
}

// New builds the server (nothing listens yet). The database is opened
// lazily: New succeeds while PostgreSQL is down.
func New(cfg Config) (*Server, error) {
	if cfg.Realm == "" {
		return nil, errors.New("hss: realm is required")
	}
	if cfg.OriginHost == "" {
		cfg.OriginHost = "hss." + cfg.Realm
	}
	if cfg.DBConns <= 0 {
		cfg.DBConns = DefaultDBConns()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 2 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.SQNBlock == 0 {
		cfg.SQNBlock = DefaultSQNBlock
	}
	st, err := store.OpenLazy(cfg.DatabaseURL, cfg.DBConns)
	if err != nil {
		return nil, err
	}
	if err := st.EnableSQNBlocks(cfg.SQNBlock, cfg.SQNCacheIMPIs); err != nil {
		st.Close()
		return nil, err
	}
	if cfg.UserDataCache >= 0 {
		st.EnableUserDataCache(cfg.UserDataCache)
	}
	if cfg.GroupCommitLanes == 0 {
		cfg.GroupCommitLanes = DefaultGroupCommitLanes
	}
	if cfg.GroupCommitLanes > 0 {
		if err := st.EnableGroupCommit(cfg.GroupCommitLanes); err != nil {
			st.Close()
			return nil, err
		}
	}
	node, err := diameter.New(diameter.Config{
		OriginHost: cfg.OriginHost, OriginRealm: cfg.Realm, ProductName: "imscore-hss", VendorID: diameter.Vendor3GPP,
		Apps: []diameter.App{diameter.AppCx, diameter.AppSh}, AllowedPeers: cfg.AllowedPeers,
		AcceptAnyPeer: cfg.AcceptAnyPeer, Logger: cfg.Logger,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, Store: st, Node: node, kick: make(chan struct{}, 1)}
	s.Cx = &cx.Server{Store: st, Node: node, Log: cfg.Logger, MaxAuthItems: cfg.MaxAuthItems}
	s.Sh = &sh.Server{Store: st, Node: node, Log: cfg.Logger, PollInterval: cfg.PollInterval,
		Outcome: func(outcome string) { s.commands.WithLabelValues("PNR", outcome).Inc() }}
	s.Cx.OnRegistration = s.Sh.RegistrationChanged
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hss_diameter_requests_total", Help: "Cx/Sh requests answered, by command and result code.",
	}, []string{"command", "result"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hss_diameter_request_seconds", Help: "Time to answer a Cx/Sh request.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
	}, []string{"command"})
	s.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hss_initiated_requests_total",
		Help: "HSS-initiated requests (RTR, PPR from imsctl deregister / push-profile; Sh PNR) by outcome: answered (2xxx), nothing_to_send (no S-CSCF assigned), refused (a permanent failure answer; not retried), retry (no answer or a transient failure; kept pending), dropped (a PNR queued too long).",
	}, []string{"command", "outcome"})
	batches := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hss_group_commit_batches_total", Help: "Batches (one transaction each) the Cx hot path's group commit sent.",
	}, func() float64 { b, _ := st.GroupCommitStats(); return float64(b) })
	jobs := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hss_group_commit_jobs_total", Help: "Cx requests' statement groups carried by those batches.",
	}, func() float64 { _, j := st.GroupCommitStats(); return float64(j) })
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{s.requests, s.latency, s.commands, batches, jobs} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, err
			}
		}
		if err := admin.RegisterPool(cfg.Registry, "hss", st.Pool()); err != nil {
			return nil, err
		}
	}
	mux := &handlerMux{s: s}
	s.Cx.Register(mux)
	s.Sh.Register(mux)
	return s, nil
}

// handlerMux wraps every handler with the request timeout and metrics.
type handlerMux struct{ s *Server }

func (m *handlerMux) Handle(cmd uint32, app diameter.App, h diameter.HandlerFunc) {
	s := m.s
	name := cmdNames[cmd]
	if name == "" {
		name = strconv.Itoa(int(cmd))
	}
	s.Node.Handle(cmd, app, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
		ans, err := h(ctx, c, req)
		code := uint32(diameter.DiameterUnableToComply)
		var miss *diameter.MissingAVPError
		var rerr *diameter.ResultError
		switch {
		case err == nil:
			if c, _, ok := diameter.Result(ans); ok {
				code = c
			}
		case errors.As(err, &miss):
			code = diameter.DiameterMissingAVP
		case errors.As(err, &rerr):
			code = rerr.Code
		default:
			s.log.Warn("request failed, answering 5012", zap.String("command", name), zap.Error(err))
		}
		s.requests.WithLabelValues(name, strconv.Itoa(int(code))).Inc()
		s.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		return ans, err
	})
}

// Start listens for Diameter peers and starts the command worker. It
// returns the bound address.
func (s *Server) Start(ctx context.Context) (net.Addr, error) {
	ctx, s.cancel = context.WithCancel(ctx)
	addr, err := s.Node.Listen(ctx, "tcp", s.cfg.DiameterListen)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("hss: diameter listen %s: %w", s.cfg.DiameterListen, err)
	}
	s.addr = addr
	s.wg.Add(3)
	go s.listenLoop(ctx)
	go s.commandLoop(ctx)
	go func() { defer s.wg.Done(); s.Sh.Run(ctx) }()
	return addr, nil
}

// Addr is the bound Diameter address after Start.
func (s *Server) Addr() net.Addr { return s.addr }

// Ready reports nil when the database answers and the listener is up (for
// /readyz).
func (s *Server) Ready(ctx context.Context) error {
	if s.addr == nil {
		return errors.New("diameter listener not started")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.Store.Ping(ctx)
}

// Close stops the worker, disconnects peers (DPR) and closes the store.
func (s *Server) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	err := s.Node.Close(ctx)
	s.wg.Wait()
	s.Store.Close()
	return err
}

// Kick makes the command worker look at hss_command now.
func (s *Server) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// listenLoop keeps a dedicated connection LISTENing on hss_commands (the
// command worker), hss_userdata (the user data cache and Sh
// notifications of provisioning changes) and hss_sh (the PNR queue and
// the Sh subscriptions); it reconnects after failures.
func (s *Server) listenLoop(ctx context.Context) {
	defer s.wg.Done()
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("hss_commands LISTEN connection lost", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) listenOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.ConnectConfig(cctx, s.Store.ConnConfig())
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range []string{"hss_commands", store.UserDataChannel, store.ShChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return err
		}
	}
	s.Kick() // catch up on anything queued while we were not listening
	// Sh notifications: changes made while not listening are looked at
	// now; the Cx hook's gate follows the subscriptions from here on.
	s.Sh.SetLive(true)
	defer s.Sh.SetLive(false)
	s.Sh.Kick()
	if s.cfg.UserDataCache >= 0 {
		// The user data cache is used only while this connection
		// listens and the database sends the notifications (migration
		// 002); any change made while it was down is then behind us.
		var triggers bool
		if err := conn.QueryRow(ctx, `SELECT to_regproc('hss_userdata_notify') IS NOT NULL`).Scan(&triggers); err != nil {
			return err
		}
		if triggers {
			s.Store.SetUserDataCacheLive(true)
			defer s.Store.SetUserDataCacheLive(false)
		} else {
			s.log.Warn("database lacks the hss_userdata triggers (migration 002): user data cache off")
		}
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		quiet := err != nil && ctx.Err() == nil && wctx.Err() != nil
		cancel()
		switch {
		case err == nil && n.Channel == store.UserDataChannel:
			s.Store.InvalidateUserData()
			s.Sh.ProvisioningChanged()
		case err == nil && n.Channel == store.ShChannel && n.Payload == store.ShSubscriptionsChanged:
			s.Sh.SubscriptionsChanged()
		case err == nil && n.Channel == store.ShChannel:
			s.Sh.Kick()
		case err == nil:
			s.Kick()
		case quiet && !conn.IsClosed():
			// Quiet for listenCheck: make sure the connection still
			// answers, so that a dead one turns the cache off.
			pctx, cancel := context.WithTimeout(ctx, listenCheck)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// listenCheck is how long the LISTEN connection may stay silent before it
// is pinged (and the longest a ping may take).
const listenCheck = 5 * time.Second

// commandLoop runs pending hss_command rows at start, on notification and
// every PollInterval.
func (s *Server) commandLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.runCommands(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

func (s *Server) runCommands(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cmds, err := s.Store.PendingCommands(qctx, 100)
	cancel()
	if err != nil {
		s.log.Debug("hss_command poll failed", zap.Error(err))
		return
	}
	for _, c := range cmds {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		switch c.Kind {
		case "rtr":
			err = s.Cx.SendRTR(cctx, c.IMPU, cx.ReasonCode(c.Reason), c.Reason)
		case "ppr":
			err = s.Cx.SendPPR(cctx, c.IMPU)
		default:
			err = cx.ErrNotAssigned
		}
		cmd := strings.ToUpper(c.Kind)
		var ae *cx.AnswerError
		switch {
		case err == nil, errors.Is(err, cx.ErrNotAssigned), errors.Is(err, store.ErrNotFound):
			if err != nil {
				s.commands.WithLabelValues(cmd, "nothing_to_send").Inc()
				s.log.Info("hss_command: nothing to send", zap.Int64("id", c.ID), zap.String("kind", c.Kind),
					zap.String("impu", c.IMPU), zap.Error(err))
			} else {
				s.commands.WithLabelValues(cmd, "answered").Inc()
				s.log.Info("hss_command: answered", zap.Int64("id", c.ID), zap.String("kind", c.Kind), zap.String("impu", c.IMPU))
			}
			if derr := s.Store.CommandDone(cctx, c.ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
				s.log.Warn("hss_command: mark done", zap.Int64("id", c.ID), zap.Error(derr))
			}
		case errors.As(err, &ae) && !ae.Transient():
			// The S-CSCF answered and refused (e.g. 3007: it has no Cx
			// PPR handler): retrying would only repeat the refusal.
			s.commands.WithLabelValues(cmd, "refused").Inc()
			s.log.Warn("hss_command: refused by the S-CSCF, not retried", zap.Int64("id", c.ID), zap.String("kind", c.Kind),
				zap.String("impu", c.IMPU), zap.Error(err))
			if derr := s.Store.CommandDone(cctx, c.ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
				s.log.Warn("hss_command: mark done", zap.Int64("id", c.ID), zap.Error(derr))
			}
		default:
			// Kept pending: retried on the next poll (S-CSCF not
			// connected yet, no answer, a transient refusal, database or
			// network trouble).
			s.commands.WithLabelValues(cmd, "retry").Inc()
			s.log.Info("hss_command: will retry", zap.Int64("id", c.ID), zap.String("kind", c.Kind),
				zap.String("impu", c.IMPU), zap.Error(err))
		}
		cancel()
	}
}

// DefaultDBConns is the PostgreSQL pool size when none is configured: two
// connections per CPU core. Measured on the 2-core lab machine
// (docs/performance.md), 4 connections sustained the Cx benchmark better
// than 16: every extra backend competes for the same cores.
func DefaultDBConns() int { return 2 * runtime.NumCPU() }
