package main

import (
	"fmt"
	"strings"

	"github.com/rlcontainers/rl/cmd/internal/cli"
	"github.com/rlcontainers/rl/cmd/internal/session"
	"github.com/rlcontainers/rl/netstack/netconf"
	"github.com/rlcontainers/rl/rootfs"
)

// runPort is `rl port`: a running container's published ports as docker
// and podman print them ("80/tcp -> 0.0.0.0:8080"; with a PORT, the host's
// ends of that port alone), the host ports -P and -p CTRPORT chose
// included. A container that is not running publishes nothing.
func runPort(all *cli.CLI, s *session.Session) error {
	c := &all.Port
	if c.All {
		list, err := s.Store.Containers()
		if err != nil {
			return err
		}
		for _, ctr := range list {
			st := rootfs.ReadState(s.Store, ctr.ID)
			if st.Status != "running" {
				continue
			}
			for _, m := range published(st.Ports) {
				fmt.Printf("%s\t%s -> %s\n", ctr.ID[:12], m.Container(), m.Host())
			}
		}
		return nil
	}
	ctr, err := rootfs.LookupContainer(s.Store, c.Container)
	if err != nil {
		return err
	}
	st := rootfs.ReadState(s.Store, ctr.ID)
	ms := published(st.Ports)
	if c.Port == "" {
		for _, m := range ms {
			fmt.Printf("%s -> %s\n", m.Container(), m.Host())
		}
		return nil
	}
	port, proto, err := cli.ContainerPort(c.Port)
	if err != nil {
		return err
	}
	var found, others []string
	for _, m := range ms {
		if m.GuestPort == port && m.Proto == proto {
			found = append(found, m.Host())
		} else {
			others = append(others, m.Container())
		}
	}
	switch {
	case len(found) > 0:
	case st.Status != "running":
		return fmt.Errorf("container %s is not running (%s), so it publishes no port: start it with rl start %s", c.Container, st.Status, c.Container)
	case len(others) > 0:
		return fmt.Errorf("container %s has no published port %d/%s (it publishes %s): publish it with rl run -p HOSTPORT:%d/%s", c.Container, port, proto, strings.Join(others, ", "), port, proto)
	default:
		return fmt.Errorf("container %s has no published port %d/%s (it publishes none): publish it with rl run -p HOSTPORT:%d/%s", c.Container, port, proto, port, proto)
	}
	for _, h := range found {
		fmt.Println(h)
	}
	return nil
}

// published reads the state's ports back (netconf.PortMapping.String);
// a line rl did not write is skipped.
func published(ports []string) []netconf.PortMapping {
	var out []netconf.PortMapping
	for _, p := range ports {
		if m, err := netconf.ParsePortMapping(p); err == nil {
			out = append(out, m)
		}
	}
	return out
}
