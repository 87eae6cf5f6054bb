// Command imsctl provisions the HSS database: schema migrations,
// subscribers (IMSU/IMPI/IMPU), service profiles, iFCs, application
// servers and S-CSCFs. See docs/provisioning.md.
package main

import (
	"fmt"
	"os"

	"github.com/imscore/imscore/hss/provision"
)

func main() {
	if err := provision.Run(os.Args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "imsctl: %v\n", err)
		os.Exit(1)
	}
}
