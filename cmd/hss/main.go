// Command hss runs the Home Subscriber Server of the IMS core.
package main

import "github.com/imscore/imscore/hss"

func main() { hss.Function().Main() }
