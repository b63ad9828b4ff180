package rootfs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
)

// Library is what rootfs needs from the image library, which rl-core does
// not link (rootfs/imagelib, in rl-image): rl-image sets it to the library
// itself, rl-core to asking rl-image. Both are needed only when rootfs
// cannot answer alone: a short name not in its cache, an image whose
// manifest is neither OCI's nor docker's schema 2 with its media type.
type Library struct {
	// Candidates are the names name stands for in the store, in the
	// order a pull tries them; cacheable says whether the answer may be
	// kept (see imagelib.Candidates).
	Candidates func(name string) (cands []string, cacheable bool, err error)
	// Config reads an image's OCI config from any manifest format.
	Config func(ctx context.Context, store storage.Store, img *storage.Image) (*imgspecv1.Image, error)
}

// Lib is the process's Library (set by its main).
var Lib Library

var errNoLibrary = errors.New("this binary has no image library (rootfs.Lib is not set)")

// ErrImageUnknown is returned when no local image matches a name.
var ErrImageUnknown = errors.New("no such image")

// LookupImage finds a local image by full name, short name (resolved as a
// pull would), id or unique id prefix.
func LookupImage(store storage.Store, name string) (*storage.Image, error) {
	if img, err := store.Image(name); err == nil {
		return img, nil
	}
	candidates, err := cachedCandidates(filepath.Join(store.RunRoot(), "rl", shortNameCacheFile), name)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", name, err)
	}
	for _, c := range candidates {
		if img, err := store.Image(c); err == nil {
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
	var users, short []string
	for _, c := range containers {
		if c.ImageID == img.ID {
			users, short = append(users, c.ID), append(short, c.ID[:12])
		}
	}
	if len(users) > 0 && !force {
		return "", fmt.Errorf("image %s is in use by container(s) %s: remove them first (rl rm) or use rmi -f", name, strings.Join(short, ", "))
	}
	for _, id := range users {
		// As rl rm -f: a running one is killed first (podman's rmi -f
		// stops them too), not deleted under its workload.
		if _, err := RemoveContainer(store, id, true); err != nil {
			return "", fmt.Errorf("removing container %s: %w", id[:12], err)
		}
	}
	if _, err := store.DeleteImage(img.ID, true); err != nil {
		return "", fmt.Errorf("removing image %s: %w", name, err)
	}
	return img.ID, nil
}
