package userns

import "encoding/binary"

// The parent and the child share one pipe, the child's fd 3 (the read end):
//
//	parent (host namespaces)                   child (new user namespace)
//	clone(NEWUSER|NEWNS) + exec /proc/self/exe
//	                                           Join: read 1 byte, blocks
//	newgidmap, newuidmap  (or the single map)
//	'G'                                     -> go, the plan in _RL_USERNS_PLAN holds
//	'P' len(4, big endian) json(Plan)       -> go, with this plan instead (helpers failed,
//	                                           the single map was written)
//	'F' message... EOF                      -> no map could be written (or the parent's
//	                                           own work failed): exit 125 quietly, the
//	                                           parent reports the error
//
// Before 'G' or 'P' the parent may send the child a payload of its own
// (Options.Payload, Child.Payload): 'A' len(4, big endian) bytes.
//
//	after 'G' or 'P', one byte per forwarded signal (its number); EOF when the parent is gone.
//
// A second pipe, the child's fd 4 (write end), goes the other way:
//
//	'D'                                     <- the child detached (rl run -d): the parent
//	                                           returns 0 at once and no longer waits
//	EOF                                     <- nothing to say: the parent waits for the exit
//
// Signals travel on the pipe rather than by kill(2) because a terminal's Ctrl-C
// already reaches both processes: the child must ignore the direct one and act
// on the forwarded one, so it acts exactly once.
const (
	msgGo       = 'G'
	msgGoPlan   = 'P'
	msgFail     = 'F'
	msgPayload  = 'A'
	maxPlanJSON = 1 << 20
	maxPayload  = 16 << 20

	msgDetached = 'D'

	childFD       = 3
	childStatusFD = 4
)

// ExtraFD is the child's fd of the first of Options.ExtraFiles.
const ExtraFD = 5

// Environment of the child. The _CONTAINERS_* variables are the ones
// go.podman.io/storage reads to learn that it runs rootless in a user namespace.
const (
	envFD          = "_RL_USERNS"
	envStatusFD    = "_RL_USERNS_STATUS"
	envPlan        = "_RL_USERNS_PLAN"
	envConfigured  = "_CONTAINERS_USERNS_CONFIGURED"
	envRootlessUID = "_CONTAINERS_ROOTLESS_UID"
	envRootlessGID = "_CONTAINERS_ROOTLESS_GID"
)

// appendSized appends a message with data: tag, len(data) as 4 bytes big
// endian, data (readSized reads what follows the tag).
func appendSized(b []byte, tag byte, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(append(b, tag), uint32(len(data)))
	return append(b, data...)
}
