// Command pcscf runs the P-CSCF of the IMS core.
package main

import "github.com/imscore/imscore/pcscf"

func main() { pcscf.Function().Main() }
