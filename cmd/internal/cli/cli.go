// Package cli is rl's command line, shared by its three binaries: rl (the
// host side and the container's init; it links neither storage nor the
// image library, so it starts in ~2 ms), rl-core (run, ps, rm, images, rmi,
// info: the store) and rl-image (pull, load: the image library's copy
// pipeline). Commands here only declare and check flags; each binary runs
// the ones it owns.
package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/rlcontainers/rl/container/initproc"
	"github.com/rlcontainers/rl/internal/wire"
	"github.com/rlcontainers/rl/rootfs/paths"
)

// Version is rl's version.
var Version = "0.1.0-dev"

// CLI is rl's command line, podman's names and flags where podman has them.
type CLI struct {
	Globals

	Run     RunCmd     `cmd:"" help:"Run a command in a new container."`
	Exec    ExecCmd    `cmd:"" help:"Run a command in a running container."`
	Start   StartCmd   `cmd:"" help:"Start stopped containers."`
	Stop    StopCmd    `cmd:"" help:"Stop running containers (the stop signal, then SIGKILL)."`
	Restart RestartCmd `cmd:"" help:"Stop containers that run, then start them again."`
	Kill    KillCmd    `cmd:"" help:"Send a signal to running containers."`
	Wait    WaitCmd    `cmd:"" help:"Wait for containers to exit and print their exit codes."`
	Logs    LogsCmd    `cmd:"" help:"Show a detached container's output."`
	Attach  AttachCmd  `cmd:"" help:"Attach to a detached container's output (and input, with -i); ctrl-p ctrl-q detaches."`
	Inspect InspectCmd `cmd:"" help:"Show containers' configuration and state as JSON."`
	Port    PortCmd    `cmd:"" help:"List a running container's published ports (-a: every running container's)."`
	Ps      PsCmd      `cmd:"" help:"List containers."`
	Rm      RmCmd      `cmd:"" help:"Remove containers."`
	Pull    PullCmd    `cmd:"" help:"Pull an image from a registry."`
	Load    LoadCmd    `cmd:"" help:"Load images from a docker-archive or oci-archive file."`
	Images  ImagesCmd  `cmd:"" help:"List images."`
	Rmi     RmiCmd     `cmd:"" help:"Remove images."`
	Info    InfoCmd    `cmd:"" help:"Show how rl runs on this machine."`
	System  SystemCmd  `cmd:"" help:"Manage the store."`
	Doctor  DoctorCmd  `cmd:"" help:"Try what rl needs on this machine; name the cause and the fix of each problem."`

	ImageConfig ImageConfigCmd `cmd:"" name:"__image-config" hidden:""`

	Version kong.VersionFlag `help:"Print the version and exit."`
}

// Globals are the flags every command takes.
type Globals struct {
	Root          string `help:"Store root (default: ~/.local/share/rl/storage)." placeholder:"DIR"`
	RunRoot       string `name:"runroot" help:"Run-state directory (default: one per store in $XDG_RUNTIME_DIR/rl, else in /tmp/rl-UID)." placeholder:"DIR"`
	StorageDriver string `name:"storage-driver" help:"Storage driver: overlay or vfs (default: chosen by probing)." enum:",overlay,vfs" default:""`
}

// Environment the host-side rl passes to rl-core and rl-image.
const (
	// EnvExe is the rl binary: the container's init.
	EnvExe = "_RL_EXE"
	// EnvLibexec is the directory holding rl-core and rl-image.
	EnvLibexec = "_RL_LIBEXEC"
)

// Paths are the store and run dir, with --root and --runroot applied.
func (g *Globals) Paths() (paths.Paths, error) {
	p, err := paths.Default()
	if err != nil {
		return p, err
	}
	root := p.Root
	if g.Root != "" {
		root = g.Root
	}
	p = p.ForRoot(root)
	if g.RunRoot != "" {
		p = p.WithRunRoot(g.RunRoot)
	}
	return p, nil
}

// Args are the global flags as command-line arguments.
func (g *Globals) Args() []string {
	var a []string
	if g.Root != "" {
		a = append(a, "--root", g.Root)
	}
	if g.RunRoot != "" {
		a = append(a, "--runroot", g.RunRoot)
	}
	if g.StorageDriver != "" {
		a = append(a, "--storage-driver", g.StorageDriver)
	}
	return a
}

// Binaries that run the commands.
const (
	Core  = "rl-core"
	Image = "rl-image"
)

// Parse parses args (without the program name). kong handles --help and
// --version itself (printing to stdout and exiting 0).
func Parse(args []string, exit func(int)) (*CLI, *kong.Context, error) {
	var c CLI
	kctx, err := parseInto(&c, args, exit)
	if err != nil {
		return nil, nil, err
	}
	return &c, kctx, nil
}

// ParseRun parses a command line the pre-scan took for rl run (PreScan)
// with a grammar of rl run alone: CLI's global flags, its Run command and
// --version, with their tags (reflect.StructOf). Building kong's model of
// the whole CLI is ~1.6 ms of each rl run's start (its reflection over
// every command's flags); this one is less than half of that. It is for
// what PreScan takes for rl run: there it parses and fails exactly as
// Parse does (TestParseRun); any other command is "unexpected" here.
func ParseRun(args []string, exit func(int)) (*CLI, *kong.Context, error) {
	v := reflect.New(runGrammar())
	kctx, err := parseInto(v.Interface(), args, exit)
	if err != nil {
		return nil, nil, err
	}
	return &CLI{
		Globals: v.Elem().Field(0).Interface().(Globals),
		Run:     v.Elem().Field(1).Interface().(RunCmd),
	}, kctx, nil
}

// runGrammar is the struct type { Globals; Run RunCmd; Version } with
// CLI's own fields and tags.
func runGrammar() reflect.Type {
	t := reflect.TypeOf(CLI{})
	var fields []reflect.StructField
	for _, name := range []string{"Globals", "Run", "Version"} {
		f, _ := t.FieldByName(name)
		f.Index, f.Offset = nil, 0
		fields = append(fields, f)
	}
	return reflect.StructOf(fields)
}

func parseInto(grammar any, args []string, exit func(int)) (*kong.Context, error) {
	parser, err := kong.New(grammar,
		kong.Name("rl"),
		kong.Description("Rootless containers: root inside, your own uid outside."),
		kong.UsageOnError(),
		kong.Vars{"version": Version},
		kong.Exit(exit),
	)
	if err != nil {
		return nil, err
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		// Not wrapped: kong's ParseError carries exit code 80, and a bad
		// command line is rl's own failure, 125 as docker's and podman's.
		return nil, errors.New(err.Error() + ": see rl --help")
	}
	return kctx, nil
}

// Parsed is a command line as the host-side rl parsed and checked it. It
// reaches rl-core and rl-image in the environment (EnvParsed), so they
// need not build kong's model of the whole command line again (~1.8 ms of
// each start, on the critical path of rl run).
type Parsed struct {
	Command string
	Given   map[string]bool
	CLI     *CLI
}

// EnvParsed carries the host's Parsed (Encode) to rl-core and rl-image.
const EnvParsed = "_RL_PARSED"

// kindParsed is Parsed's internal/wire message kind.
const kindParsed = 'P'

// Encode is p as EnvParsed's value: base64 of an internal/wire message of
// the command's name, the layouts of the global flags' and the command's
// structs, then Given, the global flags and the one command's struct, not
// the whole CLI. (encoding/json built its field tables for these types at
// their first use, ~0.25 ms of rl-core's start, more than the decoding.)
func (p Parsed) Encode() (string, error) {
	f, ok := commandField(p.CLI, p.Command)
	if !ok {
		return "", fmt.Errorf("no command %q in rl's command line", p.Command)
	}
	gl, cl, err := parsedLayouts(f.Type())
	if err != nil {
		return "", err
	}
	e := wire.NewEncoder(kindParsed)
	e.String(p.Command)
	e.Uint(gl)
	e.Uint(cl)
	e.Value(reflect.ValueOf(p.Given))
	e.Value(reflect.ValueOf(p.CLI.Globals))
	e.Value(f)
	return base64.RawURLEncoding.EncodeToString(e.Bytes()), nil
}

func parsedLayouts(command reflect.Type) (globals, cmd uint64, err error) {
	if globals, err = wire.Layout(reflect.TypeOf(Globals{})); err == nil {
		cmd, err = wire.Layout(command)
	}
	return globals, cmd, err
}

// decodeParsed is Encode's inverse. A message from another build of rl
// (other flags) is refused by the layouts.
func decodeParsed(s string) (Parsed, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Parsed{}, err
	}
	d := wire.NewDecoder(b, kindParsed)
	command := d.String()
	c := &CLI{}
	f, ok := commandField(c, command)
	if d.Err() == nil && !ok {
		return Parsed{}, fmt.Errorf("no command %q in rl's command line", command)
	}
	gl, cl := d.Uint(), d.Uint()
	if d.Err() == nil {
		mgl, mcl, err := parsedLayouts(f.Type())
		if err != nil {
			return Parsed{}, err
		}
		if gl != mgl || cl != mcl {
			return Parsed{}, errors.New("it comes from another build of rl (its flags differ)")
		}
	}
	var given map[string]bool
	d.Value(reflect.ValueOf(&given).Elem())
	d.Value(reflect.ValueOf(&c.Globals).Elem())
	if d.Err() == nil {
		d.Value(f)
	}
	if err := d.Finish(); err != nil {
		return Parsed{}, err
	}
	return Parsed{Command: command, Given: given, CLI: c}, nil
}

// commandField is the field of c that holds command (Command's first
// word: kong names a command after its field, lowercased).
func commandField(c *CLI, command string) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if _, cmd := f.Tag.Lookup("cmd"); cmd && strings.ToLower(f.Name) == command {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// ParseOrDecode is the command line of rl-core or rl-image: the host's
// parse, from the user namespace's handshake (payload: rl run, parsed while
// the maps are written) or from the environment (EnvParsed), else (a helper
// started with a command line of its own) args parsed again. The variable
// is removed, so a helper this process starts parses its own.
func ParseOrDecode(payload []byte, args []string, exit func(int)) (Parsed, error) {
	v, inEnv := os.LookupEnv(EnvParsed)
	os.Unsetenv(EnvParsed)
	if payload == nil && inEnv {
		payload = []byte(v)
	}
	if payload != nil {
		p, err := decodeParsed(string(payload))
		if err == nil {
			return p, nil
		}
		if len(args) == 0 {
			return Parsed{}, fmt.Errorf("decoding the command line rl parsed: %v: reinstall rl (make install), so that rl and its helpers come from one build", err)
		}
		// Another build's parse (rl and its helpers from two
		// installs): parse the words again.
	}
	c, kctx, err := Parse(args, exit)
	if err != nil {
		return Parsed{}, err
	}
	return Parsed{Command: Command(kctx), Given: Given(kctx), CLI: c}, nil
}

// PreScan guesses the command of a command line without parsing it: the
// first word after the global flags, or "" when something else comes
// first (--help, a flag it does not know). A guess only decides how early
// rl starts its helper; Parse decides the rest.
func PreScan(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--root" || a == "--runroot" || a == "--storage-driver":
			i++
		case strings.HasPrefix(a, "--root=") || strings.HasPrefix(a, "--runroot=") || strings.HasPrefix(a, "--storage-driver="):
		case strings.HasPrefix(a, "-"):
			return ""
		default:
			return a
		}
	}
	return ""
}

// Command is the selected command's name ("run", "pull", ...).
func Command(kctx *kong.Context) string {
	return strings.Fields(kctx.Command())[0]
}

// ImageConfigCommand is ImageConfigCmd's name.
const ImageConfigCommand = "__image-config"

// ResolveArg is rl-image's hidden command that tells rl-core what a short
// name stands for (rootfs.Library.Candidates); Resolved is its answer.
const ResolveArg = "__resolve"

// Resolved is what `rl-image __resolve NAME` writes on stdout, as JSON.
type Resolved struct {
	Candidates []string `json:"candidates"`
	Cacheable  bool     `json:"cacheable"`
}

// BinaryFor names the binary that runs a command.
func BinaryFor(command string) string {
	switch command {
	case "pull", "load", "images", ImageConfigCommand:
		return Image
	}
	return Core
}

// ExitCode is an error that only carries the code to exit with: the report
// was printed already (by a child, or by the workload).
type ExitCode int

func (e ExitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// CodedError is a failure with the exit code rl must leave with.
type CodedError interface {
	error
	ExitCode() int
}

// Report prints err as one line on w and returns the exit code: 0 for nil,
// the code of an ExitCode or CodedError, else 125.
func Report(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ec ExitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	code := initproc.ExitRlError
	var ce CodedError
	if errors.As(err, &ce) {
		code = ce.ExitCode()
	}
	fmt.Fprintln(w, "rl: "+strings.ReplaceAll(err.Error(), "\n", " "))
	return code
}

// Unsupported is the error of a binary asked to run another's command.
func Unsupported(command, binary string) error {
	return fmt.Errorf("%s does not run %q: run rl instead", binary, command)
}

// Each runs fn for each container (ref as given, id resolved); the first
// failure is returned, later ones are reported on stderr as they come (as
// podman does for several containers).
func Each(refs, ids []string, fn func(ref, id string) error) error {
	var first error
	for i := range refs {
		if err := fn(refs[i], ids[i]); err != nil {
			if first == nil {
				first = err
			} else {
				Report(os.Stderr, err)
			}
		}
	}
	return first
}
