package netstack

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// arpRequest is the guest's ARP request for the gateway, as an Ethernet
// frame.
func arpRequest() []byte {
	frame := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{
		SrcAddr: guestMAC,
		DstAddr: "\xff\xff\xff\xff\xff\xff",
		Type:    header.ARPProtocolNumber,
	})
	arp := header.ARP(frame[header.EthernetMinimumSize:])
	arp.SetIPv4OverEthernet()
	arp.SetOp(header.ARPRequest)
	copy(arp.HardwareAddressSender(), []byte(guestMAC))
	copy(arp.ProtocolAddressSender(), []byte{10, 0, 2, 100})
	copy(arp.ProtocolAddressTarget(), []byte{10, 0, 2, 2})
	return frame
}

// readARPReply reads frames from fd until the gateway's ARP reply to the
// guest, skipping the stack's own IPv6 chatter; it fails after timeout.
func readARPReply(t *testing.T, fd int, timeout time.Duration) {
	t.Helper()
	tv := unix.NsecToTimeval(int64(timeout))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 2048)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatalf("no ARP reply: %v", err)
		}
		eth := header.Ethernet(buf[:n])
		if n < header.EthernetMinimumSize+header.ARPSize || eth.Type() != header.ARPProtocolNumber {
			continue
		}
		reply := header.ARP(buf[header.EthernetMinimumSize:n])
		if !reply.IsValid() || reply.Op() != header.ARPReply {
			continue
		}
		if !bytes.Equal(reply.HardwareAddressSender(), []byte(GatewayMAC)) || !bytes.Equal([]byte(eth.DestinationAddress()), []byte(guestMAC)) {
			t.Fatalf("ARP reply from %x to %x", reply.HardwareAddressSender(), []byte(eth.DestinationAddress()))
		}
		return
	}
}

// closeWithin closes s and fails when that takes longer than 5 s.
func closeWithin(t *testing.T, s *Stack) {
	t.Helper()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the TAP reader")
	}
}

// TestTAPLinkFrames runs the TAP endpoint on one end of a SOCK_SEQPACKET
// pair (one frame per message, as a TAP without vnet headers): an ARP
// request for the gateway must come back as a reply from GatewayMAC, and
// Close must end the reader.
func TestTAPLinkFrames(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	ep, err := NewTAPEndpoint(fds[0], 1500)
	if err != nil {
		unix.Close(fds[0])
		t.Fatal(err)
	}
	if ep.(*tapLink).vnet {
		t.Fatal("a socket has no vnet headers")
	}
	s, err := New(DefaultConfig(), ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fds[1], arpRequest()); err != nil {
		t.Fatal(err)
	}
	readARPReply(t, fds[1], 5*time.Second)
	closeWithin(t, s)
}

// TestTAPLinkFramesBeforeStart: frames the guest sent before the stack
// existed (the one WaitForTraffic read, and one queued on the TAP) are
// answered: the link delivers nothing before the stack has its addresses
// (gVisor attaches the link when the NIC is created, before them). Each
// round is a fresh stack; the race this guards against was lost in about
// one start in fifty.
func TestTAPLinkFramesBeforeStart(t *testing.T) {
	for i := 0; i < 200; i++ {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fds[1], arpRequest()); err != nil {
			t.Fatal(err)
		}
		ep, err := NewTAPEndpointAfter(fds[0], 1500, arpRequest())
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(DefaultConfig(), ep, nil)
		if err != nil {
			t.Fatal(err)
		}
		readARPReply(t, fds[1], 2*time.Second)
		readARPReply(t, fds[1], 2*time.Second)
		closeWithin(t, s)
		unix.Close(fds[1])
	}
}

// TestSplitHeaders: a large TCP frame's headers go into a view of their
// own and its payload stays in the frame's view, in place (so gVisor's copy
// on write of a shared header chunk copies the headers only); frames that
// are not TCP over IPv4 or plain IPv6 stay one view. The bytes are the
// frame's either way.
func TestSplitHeaders(t *testing.T) {
	const payload = 60000
	frame := func(ethType tcpip.NetworkProtocolNumber, proto uint8, tcpOpts int) []byte {
		f := make([]byte, header.EthernetMinimumSize+header.IPv6MinimumSize+header.TCPMinimumSize+tcpOpts+payload)
		header.Ethernet(f).Encode(&header.EthernetFields{SrcAddr: guestMAC, DstAddr: GatewayMAC, Type: ethType})
		ip := f[header.EthernetMinimumSize:]
		l := header.EthernetMinimumSize
		switch ethType {
		case header.IPv4ProtocolNumber:
			header.IPv4(ip).Encode(&header.IPv4Fields{TotalLength: uint16(len(ip)), Protocol: proto, TTL: 64})
			l += header.IPv4MinimumSize
		case header.IPv6ProtocolNumber:
			header.IPv6(ip).Encode(&header.IPv6Fields{PayloadLength: uint16(len(ip) - header.IPv6MinimumSize), TransportProtocol: tcpip.TransportProtocolNumber(proto), HopLimit: 64})
			l += header.IPv6MinimumSize
		}
		header.TCP(f[l:]).Encode(&header.TCPFields{DataOffset: uint8(header.TCPMinimumSize + tcpOpts), Flags: header.TCPFlagAck})
		for i := range f[l+header.TCPMinimumSize+tcpOpts:] {
			f[l+header.TCPMinimumSize+tcpOpts+i] = byte(i)
		}
		return f
	}
	for _, c := range []struct {
		name  string
		frame []byte
		hl    int // 0: one view
	}{
		{"ipv4 tcp timestamps", frame(header.IPv4ProtocolNumber, uint8(header.TCPProtocolNumber), 12), 14 + 20 + 32},
		{"ipv4 tcp", frame(header.IPv4ProtocolNumber, uint8(header.TCPProtocolNumber), 0), 14 + 20 + 20},
		{"ipv6 tcp", frame(header.IPv6ProtocolNumber, uint8(header.TCPProtocolNumber), 12), 14 + 40 + 32},
		{"ipv4 udp", frame(header.IPv4ProtocolNumber, uint8(header.UDPProtocolNumber), 0), 0},
		{"ipv6 hop-by-hop", frame(header.IPv6ProtocolNumber, uint8(header.IPv6HopByHopOptionsExtHdrIdentifier), 0), 0},
		{"arp", append(arpRequest(), make([]byte, payload)...), 0},
		{"tcp headers only", frame(header.IPv4ProtocolNumber, uint8(header.TCPProtocolNumber), 0)[:14+20+20], 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := buffer.NewViewWithData(c.frame)
			start := &v.AsSlice()[0]
			b := splitHeaders(v)
			defer b.Release()
			var sizes []int
			var first []*byte
			b.Apply(func(v *buffer.View) {
				sizes = append(sizes, v.Size())
				first = append(first, &v.AsSlice()[0])
			})
			if !bytes.Equal(b.Flatten(), c.frame) {
				t.Fatal("the buffer's bytes are not the frame's")
			}
			if c.hl == 0 {
				if len(sizes) != 1 || first[0] != start {
					t.Fatalf("views %v, want the frame's own view whole", sizes)
				}
				return
			}
			if len(sizes) != 2 || sizes[0] != c.hl || sizes[1] != len(c.frame)-c.hl {
				t.Fatalf("views %v, want [%d %d]", sizes, c.hl, len(c.frame)-c.hl)
			}
			if first[1] != (*byte)(unsafe.Add(unsafe.Pointer(start), c.hl)) {
				t.Fatal("the payload was copied out of the frame's view")
			}
		})
	}
}
