package link

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// request is one rtnetlink message of the plan, built before any of them is
// sent so that the plan can be checked without privileges.
type request struct {
	op     string // what it does, for errors: "ip link set tap0 up mtu 65520"
	family int    // AF_INET6 for IPv6 requests (their refusal has its own fix)
	msg    []byte // the whole message, header included; seq is set by do
}

// plan lists the rtnetlink requests that give the TAP at ifindex its
// configuration, in order: the link first (an address on a down link gets no
// prefix route), then each address before the route through its gateway.
func (c Config) plan(ifindex int) []request {
	var reqs []request
	var link []byte
	if c.MTU != 0 {
		link = appendAttr(link, unix.IFLA_MTU, u32(c.MTU))
	}
	if c.TxQueueLen != 0 {
		link = appendAttr(link, unix.IFLA_TXQLEN, u32(c.TxQueueLen))
	}
	reqs = append(reqs, request{
		op:     fmt.Sprintf("ip link set %s up mtu %d txqueuelen %d", c.Name, c.MTU, c.TxQueueLen),
		family: unix.AF_UNSPEC,
		msg:    message(unix.RTM_NEWLINK, 0, ifInfomsg(ifindex, unix.IFF_UP, unix.IFF_UP), link),
	})
	reqs = append(reqs, c.addrRoute(ifindex, c.Addr, c.Gateway)...)
	if c.Addr6.IsValid() {
		reqs = append(reqs, c.addrRoute(ifindex, c.Addr6, c.Gateway6)...)
	}
	return reqs
}

// addrRoute is `ip addr add PREFIX dev NAME` and `ip route add default via GW`.
func (c Config) addrRoute(ifindex int, p netip.Prefix, gw netip.Addr) []request {
	family := unix.AF_INET
	var flags uint32
	if p.Addr().Is6() {
		family = unix.AF_INET6
		// No duplicate address detection: the address is usable at once, and
		// nothing else lives on this link.
		flags = unix.IFA_F_NODAD
	}
	addr := p.Addr().AsSlice()
	var attrs []byte
	attrs = appendAttr(attrs, unix.IFA_LOCAL, addr)
	attrs = appendAttr(attrs, unix.IFA_ADDRESS, addr)
	attrs = appendAttr(attrs, unix.IFA_FLAGS, u32(flags))
	ifa := make([]byte, unix.SizeofIfAddrmsg)
	ifa[0] = byte(family)
	ifa[1] = byte(p.Bits())
	ifa[2] = byte(flags)
	ifa[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(ifa[4:], uint32(ifindex))

	var rattrs []byte
	rattrs = appendAttr(rattrs, unix.RTA_GATEWAY, gw.AsSlice())
	rattrs = appendAttr(rattrs, unix.RTA_OIF, u32(uint32(ifindex)))
	rtm := make([]byte, unix.SizeofRtMsg)
	rtm[0] = byte(family)
	// rtm[1] dst_len 0: the default route.
	rtm[4] = unix.RT_TABLE_MAIN
	rtm[5] = unix.RTPROT_BOOT
	rtm[6] = unix.RT_SCOPE_UNIVERSE
	rtm[7] = unix.RTN_UNICAST

	create := uint16(unix.NLM_F_CREATE | unix.NLM_F_EXCL)
	return []request{
		{
			op:     fmt.Sprintf("ip addr add %v dev %s", p, c.Name),
			family: family,
			msg:    message(unix.RTM_NEWADDR, create, ifa, attrs),
		},
		{
			op:     fmt.Sprintf("ip route add default via %v dev %s", gw, c.Name),
			family: family,
			msg:    message(unix.RTM_NEWROUTE, create, rtm, rattrs),
		},
	}
}

func ifInfomsg(index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// message frames body and attrs as a request that asks for an ack.
func message(typ, flags uint16, body, attrs []byte) []byte {
	n := unix.SizeofNlMsghdr + len(body) + len(attrs)
	b := make([]byte, unix.SizeofNlMsghdr, n)
	binary.NativeEndian.PutUint32(b[0:], uint32(n))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	return append(append(b, body...), attrs...)
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for ; l%unix.NLMSG_ALIGNTO != 0; l++ {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// netlinkConn is a NETLINK_ROUTE socket that sends one request at a time
// and waits for its ack.
type netlinkConn struct {
	fd  int
	seq uint32
	buf []byte
}

func dialNetlink() (*netlinkConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("network: rtnetlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("network: rtnetlink bind: %w", err)
	}
	return &netlinkConn{fd: fd, buf: make([]byte, 8192)}, nil
}

func (c *netlinkConn) close() { unix.Close(c.fd) }

// do sends req and returns the kernel's answer as an errno (nil for an ack).
func (c *netlinkConn) do(req request) error {
	c.seq++
	binary.NativeEndian.PutUint32(req.msg[8:], c.seq)
	if err := unix.Sendto(c.fd, req.msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if done, errno := parseAck(c.buf[:n], c.seq); done {
			return errno
		}
	}
}

// parseAck looks for the NLMSG_ERROR answering seq in b; its error field is
// a negative errno, or 0 for an ack.
func parseAck(b []byte, seq uint32) (bool, error) {
	for len(b) >= unix.SizeofNlMsghdr {
		l := binary.NativeEndian.Uint32(b[0:])
		typ := binary.NativeEndian.Uint16(b[4:])
		s := binary.NativeEndian.Uint32(b[8:])
		if l < unix.SizeofNlMsghdr || int(l) > len(b) {
			return true, fmt.Errorf("truncated netlink message")
		}
		if typ == unix.NLMSG_ERROR && s == seq {
			if l < unix.SizeofNlMsghdr+4 {
				return true, fmt.Errorf("truncated netlink error")
			}
			if code := int32(binary.NativeEndian.Uint32(b[unix.SizeofNlMsghdr:])); code != 0 {
				return true, unix.Errno(-code)
			}
			return true, nil
		}
		al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if int(al) >= len(b) {
			break
		}
		b = b[al:]
	}
	return false, nil
}
