// Package netstack gives containers their network: slirp-style user-mode
// networking on gVisor's tcpip stack, run by rl-net (cmd/rl-net) in the
// host's network namespace on the TAP device that package link makes inside
// the container. Its configuration, the published ports' sockets and the
// handoff to rl-net are package netconf's, which links no gVisor.
package netstack

import "github.com/rlcontainers/rl/netstack/link"

// LoopbackUp brings up lo in the container's new network namespace.
//
// Deprecated: the container's init should call link.LoopbackUp (or
// link.SetupGuest): importing this package links gVisor into the init.
func LoopbackUp() error { return link.LoopbackUp() }
