package hss

import (
	"github.com/imscore/imscore/hss/api"
	"github.com/imscore/imscore/hss/provision"
)

// APIOps returns the operations the API runs on s (queueing through db).
func APIOps(s *Server, db provision.DB) api.Operations { return apiOps{s: s, db: db} }
