package cx

// What the HSS-initiated procedures (RTR, PPR) share: finding the serving
// S-CSCF of an IMPU and its open Diameter connection.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// Errors of SendRTR and SendPPR.
var (
	// ErrNotAssigned: no S-CSCF serves the IMPU, there is nobody to tell.
	ErrNotAssigned = errors.New("cx: no S-CSCF assigned")
	// ErrNoPeer: the assigned S-CSCF has no open Diameter connection.
	ErrNoPeer = errors.New("cx: assigned S-CSCF not connected")
)

// peerConn finds the open Cx connection of Diameter host host.
func (s *Server) peerConn(host string) *diameter.Conn {
	for _, c := range s.Node.Conns() {
		if strings.EqualFold(c.PeerHost(), host) && c.Supports(uint32(diameter.AppCx)) {
			return c
		}
	}
	return nil
}

// target resolves the serving S-CSCF of impu, its connection, a User-Name
// and the IRS members.
func (s *Server) target(ctx context.Context, impu string) (a store.Assignment, conn *diameter.Conn, impi string, members []store.IMPU, err error) {
	a, err = s.Store.Assignment(ctx, impu)
	if err != nil {
		return
	}
	if a.SCSCFName == "" {
		err = ErrNotAssigned
		return
	}
	if conn = s.peerConn(a.DiameterHost); conn == nil {
		err = fmt.Errorf("%w: %q", ErrNoPeer, a.DiameterHost)
		return
	}
	impi = a.IMPI
	if impi == "" {
		var list []string
		if list, err = s.Store.IMPIsOfIMPU(ctx, impu); err != nil {
			return
		}
		if len(list) > 0 {
			impi = list[0]
		}
	}
	u, err := s.Store.LookupIMPU(ctx, impu)
	if err != nil {
		return
	}
	members, err = s.Store.IRSMembers(ctx, u.IRSID)
	return
}
