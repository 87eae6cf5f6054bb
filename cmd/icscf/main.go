// Command icscf runs the I-CSCF of the IMS core.
package main

import "github.com/imscore/imscore/icscf"

func main() { icscf.Function().Main() }
