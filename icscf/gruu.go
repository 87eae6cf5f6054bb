package icscf

// Temporary GRUUs (RFC 5627 §3.2, TS 24.229 §5.4.7A): their user part is
// a sealed token (pkg/gruu), not an IMPU the HSS knows, so the LIR for a
// request to one is sent for the IMPU sealed in it, which only holders of
// the S-CSCFs' secret (Config.GRUUSecret) can read. The Request-URI goes
// on unchanged: the S-CSCF opens the token again and checks that the
// registration it was issued in still stands.

import "github.com/emiago/sipgo/sip"

// tempGRUUIdentity is the IMPU of the temporary GRUU u (gruu.IsTemp(u)),
// for the LIR (TS 29.228 §6.1.5); a 404 with Warning "unknown temporary
// GRUU" when it was not sealed with Config.GRUUSecret or none is set.
func (s *Server) tempGRUUIdentity(u sip.Uri) (string, *sipError) {
	if s.gruu == nil {
		return "", &sipError{404, "Not Found", "temporary GRUU: no gruu-secret configured at the I-CSCF"}
	}
	t, err := s.gruu.Parse(u)
	if err != nil {
		return "", &sipError{404, "Not Found", "unknown temporary GRUU"}
	}
	return t.IMPU, nil
}
