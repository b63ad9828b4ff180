package main

import (
	_ "github.com/alecthomas/kong"
	_ "go.podman.io/image/v5/copy"
	_ "go.podman.io/image/v5/docker"
	_ "go.podman.io/image/v5/docker/archive"
	_ "go.podman.io/image/v5/oci/archive"
	_ "go.podman.io/image/v5/oci/layout"
	_ "go.podman.io/image/v5/pkg/shortnames"
	_ "go.podman.io/image/v5/signature"
	_ "go.podman.io/image/v5/storage"
	_ "go.podman.io/storage"
	_ "go.podman.io/storage/pkg/reexec"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
)

func main() {}
