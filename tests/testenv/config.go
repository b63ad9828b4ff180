package testenv

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteUserConfig writes HOME/.config/containers/registries.conf and
// policy.json so that short names resolve to docker.io, docker.io is served
// from the test registry at registryAddr (an insecure mirror), and any image
// is accepted. When the process runs as root, the files and the directories
// it creates under home are given to home's owner.
func WriteUserConfig(home, registryAddr string) error {
	dir := filepath.Join(home, ".config", "containers")
	registries := fmt.Sprintf(`# Written by rl's testenv: docker.io is served by a local test registry.
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "docker.io"

[[registry.mirror]]
location = %[1]q
insecure = true

[[registry]]
location = %[1]q
insecure = true
`, registryAddr)
	policy := `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n"

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "registries.conf"), []byte(registries), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(policy), 0o644); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	owner, err := os.Stat(home)
	if err != nil {
		return err
	}
	return chownLike(owner, filepath.Join(home, ".config"), dir,
		filepath.Join(dir, "registries.conf"), filepath.Join(dir, "policy.json"))
}
