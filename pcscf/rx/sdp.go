package rx

import (
	"errors"
	"strconv"
	"strings"
)

// SDP is the part of an SDP body (RFC 4566) Rx needs.
type SDP struct {
	Conn      string // session-level c= address
	Direction string // session-level sendrecv/sendonly/recvonly/inactive, "" when absent
	Media     []Media
}

// Media is one m= section.
type Media struct {
	Type        string // audio, video...
	Port        int
	Proto       string
	Formats     []string
	Conn        string // media-level c= address
	BandwidthAS int    // b=AS in kbit/s
	Direction   string // media-level sendrecv/sendonly/recvonly/inactive, "" when absent
	// RTCPPort and RTCPAddr are from a=rtcp (RFC 3605 §2.1: "a=rtcp:port
	// [nettype addrtype connection-address]"); 0 and "" when absent.
	RTCPPort int
	RTCPAddr string
	Lines    []string
}

// RTCP returns the port and address RTCP of media i uses: those of its
// a=rtcp attribute (RFC 3605), else the RTP port + 1 (RFC 3550 §11) and
// the media's address. A stream with port 0 has RTCP port 0.
func (s *SDP) RTCP(i int) (port int, addr string) {
	m := s.Media[i]
	port, addr = m.RTCPPort, m.RTCPAddr
	if port == 0 && m.Port != 0 {
		port = m.Port + 1
	}
	if m.Port == 0 {
		port = 0
	}
	if addr == "" {
		addr = s.MediaAddr(i)
	}
	return port, addr
}

// MediaDirection returns the direction attribute in force for media i (RFC
// 4566 §6: media level, else session level, else sendrecv).
func (s *SDP) MediaDirection(i int) string {
	if d := s.Media[i].Direction; d != "" {
		return d
	}
	if s.Direction != "" {
		return s.Direction
	}
	return "sendrecv"
}

// Text returns the m= line and its attribute lines, newline separated
// (the Codec-Data payload after its two header lines, TS 29.214 §5.3.7).
func (m Media) Text() string { return strings.Join(m.Lines, "\n") + "\n" }

// MediaAddr returns the connection address of media i.
func (s *SDP) MediaAddr(i int) string {
	if s.Media[i].Conn != "" {
		return s.Media[i].Conn
	}
	return s.Conn
}

// ParseSDP parses body; a body without m= lines is an error.
func ParseSDP(body []byte) (*SDP, error) {
	s := &SDP{}
	var cur *Media
	for _, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		val := line[2:]
		switch line[0] {
		case 'm':
			f := strings.Fields(val)
			if len(f) < 3 {
				return nil, errors.New("rx: bad m= line")
			}
			port, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
			if err != nil {
				return nil, errors.New("rx: bad m= port")
			}
			s.Media = append(s.Media, Media{Type: f[0], Port: port, Proto: f[2], Formats: f[3:]})
			cur = &s.Media[len(s.Media)-1]
		case 'c':
			f := strings.Fields(val)
			if len(f) < 3 {
				return nil, errors.New("rx: bad c= line")
			}
			addr := strings.SplitN(f[2], "/", 2)[0]
			if cur != nil {
				cur.Conn = addr
			} else {
				s.Conn = addr
			}
		case 'a':
			switch val {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				if cur != nil {
					cur.Direction = val
				} else {
					s.Direction = val
				}
			}
			if rest, ok := strings.CutPrefix(val, "rtcp:"); ok && cur != nil {
				cur.RTCPPort, cur.RTCPAddr = parseRTCP(rest)
			}
		case 'b':
			if cur != nil && strings.HasPrefix(val, "AS:") {
				cur.BandwidthAS, _ = strconv.Atoi(val[3:])
			}
		}
		if cur != nil && (line[0] == 'm' || line[0] == 'a' || line[0] == 'b') {
			cur.Lines = append(cur.Lines, line)
		}
	}
	if len(s.Media) == 0 {
		return nil, errors.New("rx: SDP without media")
	}
	return s, nil
}

// parseRTCP reads the value of an a=rtcp attribute (RFC 3605 §2.1): a
// port, optionally followed by "IN IP4|IP6 <address>". A value that does
// not parse gives port 0 (the caller falls back to RTP port + 1).
func parseRTCP(v string) (int, string) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return 0, ""
	}
	port, err := strconv.Atoi(f[0])
	if err != nil || port <= 0 || port > 65535 {
		return 0, ""
	}
	if len(f) >= 4 {
		return port, strings.SplitN(f[3], "/", 2)[0]
	}
	return port, ""
}
