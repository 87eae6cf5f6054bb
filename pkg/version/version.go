// Package version holds the build version of every binary of the IMS core.
package version

// Version is set at link time: -ldflags "-X github.com/imscore/imscore/pkg/version.Version=v0.1.0".
var Version = "dev"
