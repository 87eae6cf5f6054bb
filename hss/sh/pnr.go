package sh

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// Push-Notification: the queued PNRs out, PNA in (TS 29.328 §6.1.4,
// TS 29.329 §6.1.7-8). Changes queue PNRs in sh_notification (PUR with
// its write, notify.go for the rest); whichever HSS process has the AS
// connected sends them, oldest first per subscription, and deletes each
// once the AS answered.

// Sender limits.
const (
	pnrBatch    = 32               // PNRs claimed at once
	pnrParallel = 8                // PNRs in flight at once (to distinct subscriptions)
	pnrTimeout  = 5 * time.Second  // wait for a PNA
	pnrLease    = 30 * time.Second // a claimed PNR is not handed out again before
	pnrRetryMax = time.Minute      // longest wait before a PNR is tried again
)

// shHosts are the Diameter hosts of the Sh peers connected here.
func (s *Server) shHosts() []string {
	var out []string
	for _, c := range s.Node.Conns() {
		if c.Supports(uint32(diameter.AppSh)) && c.Err() == nil && c.Watchdog() != diameter.WatchdogDown {
			out = append(out, c.PeerHost())
		}
	}
	return out
}

// sendPNR sends a Push-Notification-Request about impu carrying userData
// to the AS whose Diameter host is host, over its open connection.
func (s *Server) sendPNR(ctx context.Context, host, impu string, userData []byte) (*diam.Message, error) {
	var conn *diameter.Conn
	for _, c := range s.Node.Conns() {
		if strings.EqualFold(c.PeerHost(), host) && c.Supports(uint32(diameter.AppSh)) && c.Err() == nil {
			conn = c
			break
		}
	}
	if conn == nil {
		return nil, fmt.Errorf("sh: AS %s not connected", host)
	}
	req := s.Node.NewRequest(diameter.CmdPushNotification, diameter.AppSh, conn.PeerRealm(), conn.PeerHost())
	req.AddAVP(diameter.Grouped(diameter.AVPUserIdentity,
		diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu))))
	req.AddAVP(diameter.NewAVP(diameter.AVPShUserData, datatype.OctetString(userData)))
	return conn.Send(ctx, req)
}

// sendQueued sends the due PNRs of the ASes connected here until none is
// left (or the database fails).
func (s *Server) sendQueued(ctx context.Context) {
	for ctx.Err() == nil {
		hosts := s.shHosts()
		if len(hosts) == 0 {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := s.Store.ClaimShNotifications(cctx, hosts, pnrLease, pnrBatch)
		cancel()
		if err != nil {
			s.log().Debug("PNR queue: claim failed", zap.Error(err))
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, pnrParallel)
		for _, n := range batch {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				s.deliver(ctx, n)
			}()
		}
		wg.Wait()
		if len(batch) < pnrBatch {
			return
		}
	}
}

// deliver sends one queued PNR and settles it: answered or refused for
// good → removed; no answer or a transient failure
// (diameter.TransientFailure) → due again after a back-off (1 s, 2 s,
// 4 s … at most pnrRetryMax).
func (s *Server) deliver(ctx context.Context, n store.ShNotification) {
	sctx, cancel := context.WithTimeout(ctx, pnrTimeout)
	ans, err := s.sendPNR(sctx, n.ASHost, n.IMPU, n.UserData)
	cancel()
	outcome := "answered"
	var code uint32
	var experimental bool
	if err == nil {
		code, experimental, _ = diameter.Result(ans)
	}
	switch {
	case err != nil:
		outcome = "retry"
	case diameter.IsSuccess(ans):
	case diameter.TransientFailure(code, experimental):
		outcome = "retry"
		err = fmt.Errorf("PNA result %d", code)
	default:
		outcome = "refused"
		err = fmt.Errorf("PNA result %d", code)
	}
	if s.Outcome != nil {
		s.Outcome(outcome)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	log := s.log().With(zap.Int64("id", n.ID), zap.String("as", n.ASHost), zap.String("impu", n.IMPU))
	if outcome == "retry" {
		wait := min(time.Second<<min(n.Attempts-1, 6), pnrRetryMax)
		log.Info("PNR: will retry", zap.Int("attempt", n.Attempts), zap.Duration("in", wait), zap.Error(err))
		if derr := s.Store.ShNotificationRetry(dctx, n.ID, wait); derr != nil {
			log.Warn("PNR: reschedule", zap.Error(derr))
		}
		return
	}
	if outcome == "refused" {
		log.Warn("PNR refused by the AS, dropped", zap.Error(err))
	} else {
		log.Debug("PNR answered")
	}
	if derr := s.Store.ShNotificationSent(dctx, n.ID); derr != nil {
		log.Warn("PNR: remove from the queue", zap.Error(derr))
	}
}
