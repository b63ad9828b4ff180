package rootfs

import (
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// ErrImageUnknown is returned when no local image matches a name.
var ErrImageUnknown = errors.New("no such image")

// LookupImage finds a local image by full name, short name (resolved as a
// pull would), id or unique id prefix.
func LookupImage(store storage.Store, name string) (*storage.Image, error) {
	if img, err := store.Image(name); err == nil {
		return img, nil
	}
	sys := &types.SystemContext{}
	candidates, err := shortnames.ResolveLocally(sys, name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", name, err)
	}
	if _, err := sysregistriesv2.UnqualifiedSearchRegistries(sys); err == nil && shortnames.IsShortName(name) {
		if named, err := reference.ParseNormalizedNamed(name); err == nil {
			candidates = append(candidates, reference.TagNameOnly(named))
		}
	}
	for _, c := range candidates {
		if img, err := store.Image(c.String()); err == nil {
			return img, nil
		}
	}
	return nil, fmt.Errorf("%w %q: see rl images", ErrImageUnknown, name)
}

// RemoveImage deletes an image; it refuses while containers use it unless
// force, in which case those containers go first.
func RemoveImage(store storage.Store, name string, force bool) (string, error) {
	img, err := LookupImage(store, name)
	if err != nil {
		return "", err
	}
	containers, err := store.Containers()
	if err != nil {
		return "", err
	}
	var users []string
	for _, c := range containers {
		if c.ImageID == img.ID {
			users = append(users, c.ID[:12])
		}
	}
	if len(users) > 0 && !force {
		return "", fmt.Errorf("image %s is in use by container(s) %s: remove them first (rl rm) or use rmi -f", name, strings.Join(users, ", "))
	}
	for _, id := range users {
		if err := store.DeleteContainer(id); err != nil {
			return "", fmt.Errorf("removing container %s: %w", id, err)
		}
	}
	if _, err := store.DeleteImage(img.ID, true); err != nil {
		return "", fmt.Errorf("removing image %s: %w", name, err)
	}
	return img.ID, nil
}
