package netstack

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

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

	guestMAC := []byte{0x02, 0, 0, 0, 0, 0x64}
	frame := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{
		SrcAddr: "\x02\x00\x00\x00\x00\x64",
		DstAddr: "\xff\xff\xff\xff\xff\xff",
		Type:    header.ARPProtocolNumber,
	})
	arp := header.ARP(frame[header.EthernetMinimumSize:])
	arp.SetIPv4OverEthernet()
	arp.SetOp(header.ARPRequest)
	copy(arp.HardwareAddressSender(), guestMAC)
	copy(arp.ProtocolAddressSender(), []byte{10, 0, 2, 100})
	copy(arp.ProtocolAddressTarget(), []byte{10, 0, 2, 2})
	if _, err := unix.Write(fds[1], frame); err != nil {
		t.Fatal(err)
	}

	tv := unix.NsecToTimeval(int64(5 * time.Second))
	unix.SetsockoptTimeval(fds[1], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 2048)
	for {
		n, err := unix.Read(fds[1], buf)
		if err != nil {
			t.Fatalf("no ARP reply: %v", err)
		}
		eth := header.Ethernet(buf[:n])
		if n < len(frame) || eth.Type() != header.ARPProtocolNumber {
			continue // the stack's own IPv6 chatter
		}
		reply := header.ARP(buf[header.EthernetMinimumSize:n])
		if !reply.IsValid() || reply.Op() != header.ARPReply {
			continue
		}
		if !bytes.Equal(reply.HardwareAddressSender(), []byte(GatewayMAC)) || !bytes.Equal([]byte(eth.DestinationAddress()), guestMAC) {
			t.Fatalf("ARP reply from %x to %x", reply.HardwareAddressSender(), []byte(eth.DestinationAddress()))
		}
		break
	}

	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the TAP reader")
	}
}
