// Command floor measures two floors that bench/net sets rl's network
// against, so that the table says how far from them rl-net is, not only how
// far from loopback:
//
//	floor relay LISTEN DIAL   accept on LISTEN, dial DIAL for each client and
//	                          copy both ways through a buffer with read(2) and
//	                          write(2), on one processor as rl-net runs: the
//	                          four copies of a byte that NAT makes too (the
//	                          client's kernel, the relay's read, its write,
//	                          the server's kernel), and no TCP stack of its own
//	floor stack               start gVisor's stack as rl-net has it (IPv4,
//	                          IPv6, ARP, TCP, UDP, ICMP, one NIC) and print the
//	                          process's peak RSS (VmHWM) and private memory
//	                          (RssAnon), in kB: what any Go program running
//	                          that stack costs before a packet
//
// It is built and run by bench/net; it is not part of rl.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"

	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "relay":
		err = relay(os.Args[2], os.Args[3])
	case len(os.Args) == 2 && os.Args[1] == "stack":
		err = stackRSS()
	default:
		err = fmt.Errorf("usage: floor relay LISTEN DIAL | floor stack")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func relay(listen, dial string) error {
	runtime.GOMAXPROCS(1)
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			d, err := net.Dial("tcp", dial)
			if err != nil {
				return
			}
			defer d.Close()
			done := make(chan struct{})
			go func() {
				copyHalf(d, c)
				close(done)
			}()
			copyHalf(c, d)
			<-done
		}()
	}
}

// copyHalf copies src to dst with read(2) and write(2): the wrappers hide
// the connections' ReadFrom and WriteTo, which would splice.
func copyHalf(dst, src net.Conn) {
	buf := make([]byte, 256<<10)
	io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	dst.(*net.TCPConn).CloseWrite()
}

func stackRSS() error {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	defer s.Destroy()
	if err := s.CreateNIC(1, channel.New(256, 65520, "")); err != nil {
		return fmt.Errorf("creating the NIC: %v", err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	var hwm, anon string
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			switch f[0] {
			case "VmHWM:":
				hwm = f[1]
			case "RssAnon:":
				anon = f[1]
			}
		}
	}
	if hwm == "" || anon == "" {
		return fmt.Errorf("no VmHWM or RssAnon in /proc/self/status")
	}
	fmt.Println(hwm, anon)
	return nil
}
