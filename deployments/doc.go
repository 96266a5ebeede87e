// Package deployments holds Dispatch24's deployment artefacts rather than code: the NATS
// cluster configuration (nats/), Kubernetes manifests (kubernetes/), the Grafana dashboard and
// Prometheus alerting rules (observability/), and, at the repository root, docker-compose.yml
// and the Dockerfile.
//
// Its tests load those files with the same parsers the tools use (the compose-spec loader,
// nats-server's configuration parser, a YAML decoder) and check them against
// internal/config, so a renamed variable or a missing route fails `go test` instead of a
// deployment.
package deployments
