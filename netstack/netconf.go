package netstack

import "github.com/rlcontainers/rl/netstack/netconf"

// The network's configuration, its published ports and the handoff to
// rl-net live in package netconf, which links no gVisor (rl-core uses them
// and nothing of the stack); they keep their names here for the stack's code.
type (
	Config      = netconf.Config
	PortMapping = netconf.PortMapping
	Listeners   = netconf.Listeners
	PortError   = netconf.PortError
)

var (
	DefaultConfig = netconf.DefaultConfig
	Listen        = netconf.Listen
)
