package initproc

import (
	"encoding"
	"fmt"

	"github.com/rlcontainers/rl/internal/wire"
	"github.com/rlcontainers/rl/netstack/link"
	"github.com/rlcontainers/rl/rootfs/mounts"
)

// The kinds of message the supervisor sends the init (internal/wire).
const (
	kindNetworkSpec = 'N'
	kindSpec        = 'S'
)

// MarshalBinary encodes ns for the init.
func (ns NetworkSpec) MarshalBinary() ([]byte, error) {
	e := wire.NewEncoder(kindNetworkSpec)
	e.Bool(ns.Shared)
	e.Bool(ns.Link != nil)
	if l := ns.Link; l != nil {
		e.String(l.Name)
		e.Uint(uint64(l.MTU))
		e.Uint(uint64(l.TxQueueLen))
		appendBinary(e, l.Addr)
		appendBinary(e, l.Gateway)
		appendBinary(e, l.Addr6)
		appendBinary(e, l.Gateway6)
	}
	return e.Bytes(), nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (ns *NetworkSpec) UnmarshalBinary(msg []byte) error {
	d := wire.NewDecoder(msg, kindNetworkSpec)
	*ns = NetworkSpec{Shared: d.Bool()}
	if d.Bool() {
		l := &link.Config{Name: d.String(), MTU: uint32(d.Uint()), TxQueueLen: uint32(d.Uint())}
		readBinary(d, &l.Addr)
		readBinary(d, &l.Gateway)
		readBinary(d, &l.Addr6)
		readBinary(d, &l.Gateway6)
		ns.Link = l
	}
	return d.Finish()
}

func appendBinary(e *wire.Encoder, v encoding.BinaryMarshaler) {
	b, _ := v.MarshalBinary() // netip's never fail
	e.Blob(b)
}

func readBinary(d *wire.Decoder, v encoding.BinaryUnmarshaler) {
	if b := d.Blob(); d.Err() == nil {
		if err := v.UnmarshalBinary(b); err != nil {
			d.Fail(err)
		}
	}
}

// MarshalBinary encodes s for the init.
func (s *Spec) MarshalBinary() ([]byte, error) {
	e := wire.NewEncoder(kindSpec)
	e.String(s.Rootfs)
	e.String(s.Hostname)
	appendOps(e, s.Mounts)
	appendStrings(e, s.Args)
	appendStrings(e, s.Env)
	e.String(s.Cwd)
	e.String(s.User)
	e.Bool(s.Terminal)
	e.Int(int64(s.Reaper))
	e.Int(int64(s.Preserve))
	e.Int(int64(s.PreserveFrom))
	appendStrings(e, s.Caps)
	e.Bool(s.NoNewPrivs)
	e.Blob(s.Seccomp.bytes())
	e.Bool(s.ConnectNotify)
	e.Bool(s.AcceptNotify)
	return e.Bytes(), nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (s *Spec) UnmarshalBinary(msg []byte) error {
	d := wire.NewDecoder(msg, kindSpec)
	*s = Spec{Rootfs: d.String(), Hostname: d.String(), Mounts: readOps(d, 0),
		Args: readStrings(d), Env: readStrings(d), Cwd: d.String(), User: d.String(),
		Terminal: d.Bool(), Reaper: int(d.Int()), Preserve: int(d.Int()), PreserveFrom: int(d.Int()),
		Caps: readStrings(d), NoNewPrivs: d.Bool()}
	if b := d.Blob(); d.Err() == nil {
		p, err := programFrom(b)
		if err != nil {
			d.Fail(err)
		}
		s.Seccomp = p
	}
	s.ConnectNotify = d.Bool()
	s.AcceptNotify = d.Bool()
	return d.Finish()
}

// appendStrings keeps nil and empty apart (a leading presence flag).
func appendStrings(e *wire.Encoder, ss []string) {
	e.Bool(ss != nil)
	if ss != nil {
		e.Strings(ss)
	}
}

func readStrings(d *wire.Decoder) []string {
	if !d.Bool() {
		return nil
	}
	if ss := d.Strings(); ss != nil {
		return ss
	}
	return []string{}
}

func appendOps(e *wire.Encoder, ops []mounts.Op) {
	e.Uint(uint64(len(ops)))
	for _, op := range ops {
		e.String(string(op.Kind))
		e.String(op.Source)
		e.String(op.Target)
		e.String(op.FSType)
		e.Uint(uint64(op.Flags))
		e.String(op.Data)
		e.Bool(op.File)
		e.Bool(op.Optional)
		appendOps(e, op.Fallback)
	}
}

// readOps reads appendOps's list; depth bounds the nesting of fallbacks.
func readOps(d *wire.Decoder, depth int) []mounts.Op {
	n := d.Len(9) // an op is at least nine bytes
	if n == 0 || d.Err() != nil {
		return nil
	}
	if depth > 4 {
		d.Fail(fmt.Errorf("mount ops nested %d deep", depth))
		return nil
	}
	ops := make([]mounts.Op, n)
	for i := range ops {
		ops[i] = mounts.Op{Kind: mounts.OpKind(d.String()), Source: d.String(), Target: d.String(),
			FSType: d.String(), Flags: uintptr(d.Uint()), Data: d.String(), File: d.Bool(),
			Optional: d.Bool(), Fallback: readOps(d, depth+1)}
	}
	return ops
}
