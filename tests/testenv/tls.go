package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// StartAuthRegistry runs docker-registry on 127.0.0.1 (a free port) serving
// HTTPS with a fresh self-signed certificate for 127.0.0.1, no CA trusts it,
// and basic auth for the one user, password (an htpasswd file with a bcrypt
// hash). Its files go to dir: cert.pem, key.pem, htpasswd, config.yml,
// data/, registry.log. It returns once GET /v2/ answers 401.
func StartAuthRegistry(dir, user, password string) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	o := registryOptions{
		TLSCert:  filepath.Join(dir, "cert.pem"),
		TLSKey:   filepath.Join(dir, "key.pem"),
		Htpasswd: filepath.Join(dir, "htpasswd"),
	}
	if err := WriteSelfSignedCert(o.TLSCert, o.TLSKey, "127.0.0.1"); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(o.Htpasswd, []byte(user+":"+string(hash)+"\n"), 0o644); err != nil {
		return nil, err
	}
	return startRegistryRetry(dir, o)
}

// WriteSelfSignedCert writes a self-signed ECDSA P-256 server certificate
// for the IP address ip, valid for a day, and its key (PKCS #8), both PEM.
func WriteSelfSignedCert(certFile, keyFile, ip string) error {
	addr := net.ParseIP(ip)
	if addr == nil {
		return fmt.Errorf("WriteSelfSignedCert: %q is not an IP address", ip)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ip, Organization: []string{"rl testenv"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{addr},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// AuthJSON is an auth.json (containers-auth.json(5), the format of podman's
// and docker's credential files) holding user, password for registry
// (host:port).
func AuthJSON(registry, user, password string) []byte {
	b, err := json.Marshal(map[string]any{
		"auths": map[string]any{
			registry: map[string]string{
				"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
			},
		},
	})
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return append(b, '\n')
}
