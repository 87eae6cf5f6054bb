// Package compose is the harness of make test-compose: test/compose/run.sh
// starts a private dockerd in a network namespace with locally built base
// images, and compose_test.go (build tag "compose", so that go test ./...
// leaves it out) runs the docker-compose.yml lab with third-party UEs (sipp,
// baresip) from another namespace that reaches it only through the published
// ports. docs/configuration.md ("docker compose") describes the lab.
package compose
