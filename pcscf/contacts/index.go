package contacts

import "github.com/imscore/imscore/pkg/setindex"

// index maps a normalised value (an IMPU, a host and port, a flow...) to
// the keys of the contacts holding it; a value held by one contact costs
// no map of its own (pkg/setindex).
type index = setindex.Index[string, string]

func newIndex() index { return setindex.New[string, string]() }
