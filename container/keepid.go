package container

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/rlcontainers/rl/userns"
)

// userNS is the container's own user namespace, nested in the supervisor's
// (--userns keep-id); nil when the container shares the supervisor's.
type userNS struct {
	uids, gids []syscall.SysProcIDMap
	setgroups  bool
	uid, gid   int // the user's ids, as the container sees them
}

// keepID maps the user's own uid and gid to the same numbers inside the
// container, as podman's --userns keep-id: the supervisor's namespace maps
// 0 to the user and 1..N-1 to the subordinate range; the container's maps
// U to 0, 0..U-1 to 1..U and U+1..N-1 to themselves. Files the user owns
// on the host keep their owner inside (a bind-mounted project directory).
func keepID(plan *userns.Plan) *userNS {
	uid, gid := hostID("_CONTAINERS_ROOTLESS_UID", os.Getuid()), hostID("_CONTAINERS_ROOTLESS_GID", os.Getgid())
	if plan != nil && len(plan.UIDs) > 0 {
		uid, gid = int(plan.UIDs[0].HostID), int(plan.GIDs[0].HostID)
	}
	u := &userNS{uid: uid, gid: gid, setgroups: true}
	u.uids = shiftedMap(uid, mapSize(plan, true))
	u.gids = shiftedMap(gid, mapSize(plan, false))
	if b, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(b)) == "deny" {
		u.setgroups = false // a single-ID namespace denies it, and so must its children
	}
	return u
}

func shiftedMap(id, size int) []syscall.SysProcIDMap {
	m := []syscall.SysProcIDMap{{ContainerID: id, HostID: 0, Size: 1}}
	if size > 1 {
		below := min(id, size-1)
		m = append(m, syscall.SysProcIDMap{ContainerID: 0, HostID: 1, Size: below})
		if size-1 > id {
			m = append(m, syscall.SysProcIDMap{ContainerID: id + 1, HostID: id + 1, Size: size - 1 - id})
		}
	}
	return m
}

// mapSize is how many ids the supervisor's own namespace maps.
func mapSize(plan *userns.Plan, uids bool) int {
	if plan == nil {
		return 1
	}
	maps := plan.UIDs
	if !uids {
		maps = plan.GIDs
	}
	n := 0
	for _, m := range maps {
		n += int(m.Size)
	}
	return n
}

func hostID(env string, fallback int) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil {
		return v
	}
	return fallback
}
