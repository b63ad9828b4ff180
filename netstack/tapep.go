package netstack

import (
	"encoding/binary"
	"fmt"
	"github.com/rlcontainers/rl/netstack/netconf"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/rawfile"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tapLink is the stack's link endpoint on the container's TAP fd. It stands
// in for gVisor's fdbased endpoint, which offers offloads only on sockets
// and reads each frame into ten views of 128 B to 32 KiB. On a TAP with
// IFF_VNET_HDR (link.OpenTAP) this one has:
//   - checksum offload both ways: the container's kernel hands over TCP
//     frames with a partial checksum (no software checksum in the
//     container) and takes ours with NEEDS_CSUM (no checksum in the stack
//     and none to verify in the container); csum_partial and gVisor's
//     checksum, ~4% of the machine's CPU in a stream, are gone;
//   - TSO both ways (gVisor's host GSO): 64 KiB segments whatever the MTU,
//     so mtu=1500 streams at 5.5-6 Gbit/s instead of 0.8-1.3 (TestTAP with
//     RL_TAP_MTU=1500, 2-core machine), 86k segments for 4 GiB, not 2M;
//   - one 64 KiB view per large frame (relayGuestTCP writes it to the host
//     with one syscall), and the frame handled in the reading goroutine,
//     with no hand-off to a processor goroutine (fdbased's default of one
//     per CPU; measured alone, one processor inline was ~20% faster).
//
// Without IFF_VNET_HDR (a TAP made by an older init) it reads and writes
// plain frames, with every checksum computed as before.
type tapLink struct {
	mtu  uint32
	addr tcpip.LinkAddress
	vnet bool // every frame is preceded by a virtio_net_hdr
	// f and rc put the fd in Go's netpoller: an idle reader parks as a
	// goroutine instead of holding a thread and its P in ppoll (fdbased's
	// way), which on 2 CPUs starved the stack's other goroutines until
	// sysmon took the P back.
	f  *os.File
	rc syscall.RawConn

	// first is a frame read before the endpoint existed (WaitForTraffic),
	// vnet header included: the reader delivers it before reading more.
	first []byte

	// ready is closed by start, once the stack is set up (New): the reader
	// delivers nothing before, since gVisor attaches the link when it
	// creates the NIC, before the NIC has its addresses, and a frame
	// delivered then (the guest's ARP request for the gateway) would be
	// dropped.
	ready     chan struct{}
	startOnce sync.Once

	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	onClose    func()
	wg         sync.WaitGroup // the reader
	closing    sync.WaitGroup // the closer (Close)
	closeOnce  sync.Once
}

// virtio_net_hdr (linux/virtio_net.h), the prefix of each frame on a TAP
// with IFF_VNET_HDR; TUNSETVNETHDRSZ is left at its default, this size.
const (
	vnetHdrSize       = netconf.VnetHdrSize
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSOTCPv4      = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOTCPv6      = 4 // VIRTIO_NET_HDR_GSO_TCPV6
	gsoMaxSize        = netconf.GSOMaxSize
	smallFrame        = 1024 // copied out of the read buffer, which is kept
	readBurst         = 16   // frames the reader delivers before it yields
	tailSize          = netconf.TailSize
	maxIovecsPerWrite = 64
)

func newTAPLink(fd int, mtu uint32) (*tapLink, error) {
	f, vnet, err := netconf.PollTAP(fd)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	unix.Close(fd)
	return &tapLink{mtu: mtu, addr: GatewayMAC, vnet: vnet, f: f, rc: rc, ready: make(chan struct{})}, nil
}

// start lets the reader deliver frames (see ready).
func (e *tapLink) start() { e.startOnce.Do(func() { close(e.ready) }) }

func (e *tapLink) MTU() uint32                             { return e.mtu }
func (e *tapLink) SetMTU(mtu uint32)                       { e.mtu = mtu }
func (e *tapLink) MaxHeaderLength() uint16                 { return header.EthernetMinimumSize }
func (e *tapLink) LinkAddress() tcpip.LinkAddress          { return e.addr }
func (e *tapLink) SetLinkAddress(addr tcpip.LinkAddress)   { e.addr = addr }
func (e *tapLink) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }
func (e *tapLink) Wait()                                   { e.wg.Wait(); e.closing.Wait() }

// Capabilities: the TAP hands over frames whose checksums the container's
// kernel computed or left partial (CHECKSUM_PARTIAL, ours to trust), so the
// stack does not verify them.
func (e *tapLink) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload
}

// GSOMaxSize and SupportedGSO make the stack's TCP leave its checksum
// partial (the pseudo-header's) and send up to 64 KiB at once, which the
// container's kernel takes as one GRO packet; only with vnet headers.
func (e *tapLink) GSOMaxSize() uint32 {
	if !e.vnet {
		return 0
	}
	return gsoMaxSize - 1
}

func (e *tapLink) SupportedGSO() stack.SupportedGSO {
	if !e.vnet {
		return stack.GSONotSupported
	}
	return stack.HostGSOSupported
}

// Attach(nil) stops the reader without waiting for it: gVisor calls it
// from RemoveNIC with the stack's mutex held, and a reader delivering a
// frame may need that mutex (a route lookup), so waiting here deadlocks.
// Wait waits, outside the stack's locks.
func (e *tapLink) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	if d == nil {
		if e.dispatcher != nil {
			e.dispatcher = nil
			e.f.SetReadDeadline(time.Unix(1, 0)) // wakes and ends the reader
		}
		e.mu.Unlock()
		e.start() // a reader still waiting for it sees it was stopped
		return
	}
	defer e.mu.Unlock()
	if e.dispatcher == nil {
		e.dispatcher = d
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.readLoop(d)
		}()
	}
}

func (e *tapLink) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Close stops the reader and closes the fd, which the endpoint owns, once
// the reader is out of it. Like Attach(nil) it does not wait (RemoveNIC
// calls it under the stack's mutex); Wait does.
func (e *tapLink) Close() {
	e.closeOnce.Do(func() {
		e.Attach(nil)
		e.mu.Lock()
		f := e.onClose
		e.mu.Unlock()
		e.closing.Add(1)
		go func() {
			defer e.closing.Done()
			e.wg.Wait()
			e.f.Close()
			if f != nil {
				f()
			}
		}()
	})
}

func (e *tapLink) SetOnCloseAction(f func()) {
	e.mu.Lock()
	e.onClose = f
	e.mu.Unlock()
}

func (e *tapLink) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

func (e *tapLink) ParseHeader(pkt *stack.PacketBuffer) bool {
	h, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if ok {
		pkt.NetworkProtocolNumber = header.Ethernet(h).Type()
	}
	return ok
}

// readLoop waits for start, then reads frames until Attach(nil) and
// delivers each in this goroutine. A frame lands in a 64 KiB pooled view
// (plus a small tail for a GSO frame a little over 64 KiB) that the packet
// then owns; a small frame (an ACK) is copied out instead, so its 64 KiB
// view serves the next read rather than being cleared and reallocated for
// 60 bytes.
func (e *tapLink) readLoop(d stack.NetworkDispatcher) {
	var vh [vnetHdrSize]byte
	var big, tail *buffer.View
	iov := make([]unix.Iovec, 0, 3)
	burst := 0
	skip := 0
	if e.vnet {
		skip = vnetHdrSize
	}
	<-e.ready
	e.mu.Lock()
	stopped := e.dispatcher != d
	e.mu.Unlock()
	if stopped {
		return
	}
	if len(e.first) >= skip+header.EthernetMinimumSize {
		e.dispatch(d, buffer.MakeWithData(e.first[skip:]))
	}
	e.first = nil
	for {
		if big == nil {
			big = buffer.NewViewSize(buffer.MaxChunkSize)
		}
		if tail == nil {
			tail = buffer.NewViewSize(tailSize)
		}
		iov = iov[:0]
		if e.vnet {
			iov = append(iov, rawfile.IovecFromBytes(vh[:]))
		}
		iov = append(iov, rawfile.IovecFromBytes(big.AsSlice()), rawfile.IovecFromBytes(tail.AsSlice()))
		var n int
		var errno unix.Errno
		err := e.rc.Read(func(fd uintptr) bool {
			n, errno = readv(int(fd), iov)
			return errno != unix.EAGAIN
		})
		if err != nil {
			break // stopped
		}
		if errno != 0 {
			if errno == unix.EINTR {
				continue
			}
			break // the TAP is gone (its namespace torn down)
		}
		n -= skip
		if n < header.EthernetMinimumSize {
			continue
		}
		var payload buffer.Buffer
		switch {
		case n <= smallFrame:
			payload = buffer.MakeWithData(big.AsSlice()[:n])
		case n <= big.Size():
			big.CapLength(n)
			payload = splitHeaders(big)
			big = nil
		default:
			tail.CapLength(n - big.Size())
			payload = splitHeaders(big)
			payload.Append(tail)
			big, tail = nil, nil
		}
		e.dispatch(d, payload)
		// On rl-net's one processor (cmd/rl-net) a reader that always
		// finds a frame would run until the runtime preempts it, every
		// 10 ms, while the goroutines that take the frames further (gVisor's
		// TCP processor, the relays) wait and their queues overflow: UDP
		// from the container at 2 Gbit/s reached the host at 79 Mbit/s.
		if burst++; burst == readBurst {
			burst = 0
			runtime.Gosched()
		}
	}
	if big != nil {
		big.Release()
	}
	if tail != nil {
		tail.Release()
	}
}

// splitHeaders makes the buffer of a large frame read into v: a TCP
// segment's Ethernet, IP and TCP headers are copied into a small view of
// their own, in front of v trimmed to the payload. gVisor's IPv4 and IPv6
// endpoints take the packet's network header as a View (a reference to its
// chunk) and then slice the header again while holding it, which copies a
// shared chunk whole (buffer.PullUp's copy on write): with the headers in
// the payload's 64 KiB chunk, every segment from the container was cleared
// and copied once more in the stack (~5 % of the machine's CPU in a stream).
// Other frames (and an IPv6 header chain gVisor would parse further) stay
// in one view.
func splitHeaders(v *buffer.View) buffer.Buffer {
	if hl := tcpHeadersLen(v.AsSlice()); hl > 0 {
		h := buffer.NewViewWithData(v.AsSlice()[:hl])
		v.TrimFront(hl)
		b, p := buffer.MakeWithView(h), buffer.MakeWithView(v)
		b.Merge(&p) // not Append, which fills h's chunk from v
		return b
	}
	return buffer.MakeWithView(v)
}

// tcpHeadersLen is the length of f's Ethernet, IP and TCP headers if f is a
// TCP segment over IPv4 or over IPv6 without extension headers with more
// than its headers in f, else 0.
func tcpHeadersLen(f []byte) int {
	const eth = header.EthernetMinimumSize
	if len(f) < eth+header.IPv6MinimumSize+header.TCPMinimumSize {
		return 0
	}
	var l int
	switch header.Ethernet(f).Type() {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(f[eth:])
		if ip.Protocol() != uint8(header.TCPProtocolNumber) || ip.HeaderLength() < header.IPv4MinimumSize {
			return 0
		}
		l = eth + int(ip.HeaderLength())
	case header.IPv6ProtocolNumber:
		if header.IPv6(f[eth:]).NextHeader() != uint8(header.TCPProtocolNumber) {
			return 0
		}
		l = eth + header.IPv6MinimumSize
	default:
		return 0
	}
	if len(f) < l+header.TCPMinimumSize {
		return 0
	}
	off := int(header.TCP(f[l:]).DataOffset())
	if off < header.TCPMinimumSize || l+off >= len(f) {
		return 0
	}
	return l + off
}

// dispatch delivers one Ethernet frame (payload) if it is for us (our
// address, broadcast or multicast).
func (e *tapLink) dispatch(d stack.NetworkDispatcher, payload buffer.Buffer) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
	if h, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize); ok {
		eth := header.Ethernet(h)
		dst := eth.DestinationAddress()
		if dst == e.addr || dst[0]&1 == 1 {
			pkt.NetworkProtocolNumber = eth.Type()
			d.DeliverNetworkPacket(eth.Type(), pkt)
		}
	}
	pkt.DecRef()
}

// WritePackets writes each packet with one writev (the TAP takes one frame
// per write).
func (e *tapLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	var iovArr [maxIovecsPerWrite]unix.Iovec
	var vh [vnetHdrSize]byte
	n := 0
	for _, pkt := range pkts.AsSlice() {
		iov := iovArr[:0]
		if e.vnet {
			e.vnetHeader(&vh, pkt)
			iov = append(iov, rawfile.IovecFromBytes(vh[:]))
		}
		for _, s := range pkt.AsSlices() {
			iov = rawfile.AppendIovecFromBytes(iov, s, maxIovecsPerWrite)
		}
		if err := e.write(iov); err != nil {
			if n == 0 {
				return 0, err
			}
			break
		}
		n++
	}
	return n, nil
}

func (e *tapLink) write(iov []unix.Iovec) tcpip.Error {
	var errno unix.Errno
	err := e.rc.Write(func(fd uintptr) bool {
		for {
			errno = rawfile.NonBlockingWriteIovec(int(fd), iov)
			if errno != unix.EINTR {
				return errno != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return &tcpip.ErrClosedForSend{}
	}
	if errno != 0 {
		return tcpip.TranslateErrno(errno)
	}
	return nil
}

func readv(fd int, iov []unix.Iovec) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}

// vnetHeader fills vh for pkt as fdbased does for a socket with host GSO.
func (e *tapLink) vnetHeader(vh *[vnetHdrSize]byte, pkt *stack.PacketBuffer) {
	*vh = [vnetHdrSize]byte{}
	gso := pkt.GSOOptions
	if gso.Type == stack.GSONone {
		return
	}
	hdrLen := pkt.HeaderSize()
	binary.LittleEndian.PutUint16(vh[2:], uint16(hdrLen))
	if gso.NeedsCsum {
		vh[0] = vnetFlagNeedsCsum
		binary.LittleEndian.PutUint16(vh[6:], uint16(header.EthernetMinimumSize)+gso.L3HdrLen)
		binary.LittleEndian.PutUint16(vh[8:], gso.CsumOffset)
	}
	if pkt.Data().Size() > int(gso.MSS) {
		switch gso.Type {
		case stack.GSOTCPv4:
			vh[1] = vnetGSOTCPv4
		case stack.GSOTCPv6:
			vh[1] = vnetGSOTCPv6
		default:
			panic(fmt.Sprintf("netstack: GSO type %v on the TAP", gso.Type))
		}
		binary.LittleEndian.PutUint16(vh[4:], gso.MSS)
	}
}
