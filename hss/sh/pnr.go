package sh

import (
	"context"
	"fmt"
	"strings"

	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// Push-Notification: PNR out, PNA in (TS 29.328 §6.1.4, TS 29.329 §6.1.7-8).

// SendPNR sends a Push-Notification-Request with d to the AS whose Diameter
// host is host over its open connection.
func (s *Server) SendPNR(ctx context.Context, host, impu string, d *Data) error {
	var conn *diameter.Conn
	for _, c := range s.Node.Conns() {
		if strings.EqualFold(c.PeerHost(), host) && c.Supports(uint32(diameter.AppSh)) {
			conn = c
			break
		}
	}
	if conn == nil {
		return fmt.Errorf("sh: AS %s not connected", host)
	}
	x, err := d.Marshal()
	if err != nil {
		return err
	}
	req := s.Node.NewRequest(diameter.CmdPushNotification, diameter.AppSh, conn.PeerRealm(), conn.PeerHost())
	req.AddAVP(diameter.Grouped(diameter.AVPUserIdentity,
		diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu))))
	req.AddAVP(diameter.NewAVP(diameter.AVPShUserData, datatype.OctetString(x)))
	ans, err := conn.Send(ctx, req)
	if err != nil {
		return err
	}
	if !diameter.IsSuccess(ans) {
		code, _, _ := diameter.Result(ans)
		return fmt.Errorf("sh: PNA from %s: result %d", host, code)
	}
	return nil
}
