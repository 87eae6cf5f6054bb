package diameter

// Registrar is where an application's server installs its request handlers
// (Cx, Sh, Rx): a *Node, or a wrapper around one that adds metrics.
type Registrar interface {
	Handle(cmd uint32, app App, h HandlerFunc)
}

var _ Registrar = (*Node)(nil)
