// Command scscf runs the S-CSCF of the IMS core.
package main

import "github.com/imscore/imscore/scscf"

func main() { scscf.Function().Main() }
