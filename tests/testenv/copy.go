package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.podman.io/image/v5/copy"
	_ "go.podman.io/image/v5/docker" // transports, registered by name
	_ "go.podman.io/image/v5/docker/archive"
	_ "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"
)

// Push copies the image of an OCI layout built by BuildBusybox to a
// registry over plain HTTP or unverified TLS. dest is a docker reference
// with or without its transport: "docker://127.0.0.1:5000/library/busybox:latest"
// or "127.0.0.1:5000/library/busybox:latest".
func Push(ctx context.Context, ociLayoutDir, dest string) error {
	dest = strings.TrimPrefix(strings.TrimPrefix(dest, "docker:"), "//")
	return copyImage(ctx, ociLayoutDir, "docker://"+dest, nil)
}

// PushAuth is Push to a registry that wants basic auth as user, password.
func PushAuth(ctx context.Context, ociLayoutDir, dest, user, password string) error {
	dest = strings.TrimPrefix(strings.TrimPrefix(dest, "docker:"), "//")
	return copyImage(ctx, ociLayoutDir, "docker://"+dest, &types.DockerAuthConfig{Username: user, Password: password})
}

// SaveArchive writes the image of an OCI layout to an archive for `rl load`;
// dest is "docker-archive:FILE:busybox:latest" or "oci-archive:FILE". An
// existing FILE is replaced.
func SaveArchive(ctx context.Context, ociLayoutDir, dest string) error {
	transport, rest, _ := strings.Cut(dest, ":")
	if transport != "docker-archive" && transport != "oci-archive" {
		return fmt.Errorf("SaveArchive %q: want docker-archive:FILE[:REF] or oci-archive:FILE", dest)
	}
	file, _, _ := strings.Cut(rest, ":")
	// docker-archive refuses to write into an existing file.
	if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := copyImage(ctx, ociLayoutDir, dest, nil); err != nil {
		return err
	}
	return os.Chmod(file, 0o644)
}

// copyImage copies the layout's image to dest, authenticating with auth
// when not nil.
func copyImage(ctx context.Context, ociLayoutDir, dest string, auth *types.DockerAuthConfig) error {
	src, err := layout.NewReference(ociLayoutDir, BusyboxTag)
	if err != nil {
		return err
	}
	name, rest, ok := strings.Cut(dest, ":")
	t := transports.Get(name)
	if !ok || t == nil {
		return fmt.Errorf("destination %q: unknown transport", dest)
	}
	dst, err := t.ParseReference(rest)
	if err != nil {
		return fmt.Errorf("destination %q: %w", dest, err)
	}
	policy, err := signature.NewPolicyContext(&signature.Policy{
		Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()},
	})
	if err != nil {
		return err
	}
	defer policy.Destroy()
	sys := &types.SystemContext{
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue,
	}
	dstSys := *sys
	dstSys.DockerAuthConfig = auth
	_, err = copy.Image(ctx, policy, dst, src, &copy.Options{
		SourceCtx:      sys,
		DestinationCtx: &dstSys,
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", ociLayoutDir, dest, err)
	}
	return nil
}
