// Package seccomp compiles the container's seccomp filter: moby's default
// profile (github.com/moby/profiles/seccomp, the one docker and podman
// ship), adjusted to the container's capabilities, or a profile file
// (--security-opt seccomp=FILE), assembled into classic BPF with
// github.com/elastic/go-seccomp-bpf. It runs in rl-image (`rl-image
// __seccomp`, for the supervisor, which keeps what it gets in its run dir:
// container/seccompcache.go) so that neither rl-core nor the init links
// these libraries, whose package set-up alone cost every rl run ~0.4 ms;
// the init only installs the instructions (initproc.InstallSeccomp).
package seccomp

import (
	"fmt"
	"os"
	"runtime"

	bpfasm "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/rlcontainers/rl/container/initproc"
	"golang.org/x/net/bpf"
)

// Compile builds the filter for a container with caps. profile is "" for
// the default, or the path of a docker/OCI seccomp JSON profile.
func Compile(profile string, caps []string) ([]initproc.BPF, error) {
	var body []byte
	if profile != "" {
		var err error
		if body, err = os.ReadFile(profile); err != nil {
			return nil, fmt.Errorf("--security-opt seccomp=%s: %w", profile, err)
		}
	}
	return CompileProfile(body, caps)
}

// CompileProfile builds the filter for a container with caps from a
// profile's JSON, or moby's default profile for a nil body.
func CompileProfile(body []byte, caps []string) ([]initproc.BPF, error) {
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps,
	}}}
	var sc *specs.LinuxSeccomp
	var err error
	if body == nil {
		sc, err = profiles.GetDefaultProfile(spec)
	} else {
		sc, err = profiles.LoadProfile(string(body), spec)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	policy, err := convert(sc)
	if err != nil {
		return nil, err
	}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assembling the seccomp filter: %w", err)
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("assembling the seccomp filter: %w", err)
	}
	out := make([]initproc.BPF, len(raw))
	for i, r := range raw {
		out[i] = initproc.BPF{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	return dispatch(out, uint32(info.ID)), nil
}

// convert turns an OCI seccomp section into go-seccomp-bpf's policy, for
// the running architecture. Syscalls the assembler does not know are left
// out (they fall to the default action, which denies); argument
// comparisons it cannot express drop their rule the same way, so the
// result is never more permissive than the profile.
func convert(sc *specs.LinuxSeccomp) (*bpfasm.Policy, error) {
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	def, err := action(sc.DefaultAction, sc.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	if def&^0xffff == bpfasm.ActionErrno {
		// The assembler takes a default ERRNO only as EPERM (its Ret adds it).
		if def&0xffff != 1 {
			return nil, fmt.Errorf("seccomp profile: a default errno other than EPERM (%d) is not supported", def&0xffff)
		}
		def = bpfasm.ActionErrno
	}
	// The assembler tests a syscall once, in the first group that names
	// it: a profile's several rules for one syscall (socket: one per
	// address family) must become one group per action, their conditions
	// alternatives (OR) of one entry each.
	p := &bpfasm.Policy{DefaultAction: def}
	groups := map[bpfasm.Action]*bpfasm.SyscallGroup{}
	var order []bpfasm.Action
	plain := map[string]bool{} // allowed unconditionally: conditions add nothing
	owner := map[string]bpfasm.Action{}
	for _, rule := range sc.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, err
		}
		conds, ok := conditions(rule.Args)
		if !ok {
			continue
		}
		g, seen := groups[act]
		if !seen {
			g = &bpfasm.SyscallGroup{Action: act}
			groups[act] = g
			order = append(order, act)
		}
		for _, name := range rule.Names {
			if _, known := info.SyscallNames[name]; !known {
				continue
			}
			if a, taken := owner[name]; taken && a != act {
				continue // an earlier rule gave it another action: that one stands
			}
			owner[name] = act
			if len(conds) == 0 {
				if !plain[name] {
					plain[name] = true
					g.Names = append(g.Names, name)
				}
				continue
			}
			g.NamesWithCondtions = append(g.NamesWithCondtions, bpfasm.NameWithConditions{Name: name, Conditions: conds})
		}
	}
	for _, act := range order {
		g := groups[act]
		var kept []bpfasm.NameWithConditions
		for _, n := range g.NamesWithCondtions {
			if !plain[n.Name] {
				kept = append(kept, n)
			}
		}
		g.NamesWithCondtions = kept
		if len(g.Names) > 0 || len(g.NamesWithCondtions) > 0 {
			p.Syscalls = append(p.Syscalls, *g)
		}
	}
	return p, nil
}

func action(a specs.LinuxSeccompAction, errnoRet *uint) (bpfasm.Action, error) {
	errno := uint(1) // EPERM, docker's default
	if errnoRet != nil {
		errno = *errnoRet
	}
	switch a {
	case specs.ActAllow:
		return bpfasm.ActionAllow, nil
	case specs.ActErrno:
		return bpfasm.ActionErrno | bpfasm.Action(errno&0xffff), nil
	case specs.ActKill, specs.ActKillThread:
		return bpfasm.ActionKillThread, nil
	case specs.ActKillProcess:
		return bpfasm.ActionKillProcess, nil
	case specs.ActTrap:
		return bpfasm.ActionTrap, nil
	case specs.ActLog:
		return bpfasm.ActionLog, nil
	case specs.ActTrace:
		return bpfasm.ActionErrno | bpfasm.Action(errno&0xffff), nil // no tracer: as ERRNO
	}
	return 0, fmt.Errorf("seccomp profile: unsupported action %q", a)
}

// conditions converts a rule's argument comparisons (all must hold).
func conditions(args []specs.LinuxSeccompArg) (bpfasm.ArgumentConditions, bool) {
	var out bpfasm.ArgumentConditions
	for _, a := range args {
		c := bpfasm.Condition{Argument: uint32(a.Index), Value: a.Value}
		switch a.Op {
		case specs.OpEqualTo:
			c.Operation = bpfasm.Equal
		case specs.OpNotEqual:
			c.Operation = bpfasm.NotEqual
		case specs.OpGreaterThan:
			c.Operation = bpfasm.GreaterThan
		case specs.OpGreaterEqual:
			c.Operation = bpfasm.GreaterOrEqual
		case specs.OpLessThan:
			c.Operation = bpfasm.LessThan
		case specs.OpLessEqual:
			c.Operation = bpfasm.LessOrEqual
		case specs.OpMaskedEqual:
			// (arg & Value) == ValueTwo: expressible when ValueTwo is 0
			// (no bit of the mask set) or the mask itself (all set).
			switch a.ValueTwo {
			case 0:
				c.Operation = bpfasm.BitsNotSet
			case a.Value:
				c.Operation = bpfasm.BitsSet
			default:
				return nil, false
			}
		default:
			return nil, false
		}
		out = append(out, c)
	}
	return out, true
}
