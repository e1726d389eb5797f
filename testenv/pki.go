package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throw-away certificate authority for one test: it signs the
// apiserver's serving certificate, client certificates for users, and
// serving certificates for webhooks and audit sinks that the apiserver must
// trust.
type PKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAPEM  []byte // the CA certificate, PEM: a caBundle
	CAFile string // the CA certificate on disk
}

// NewPKI creates a CA in a temporary directory.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bulwark-testenv-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &PKI{dir: dir, ca: ca, caKey: key, CAPEM: pemBlock("CERTIFICATE", der)}
	p.CAFile = p.write(t, "ca.crt", p.CAPEM)
	return p
}

// CertPool returns a pool holding the CA.
func (p *PKI) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// KeyPair is a certificate and its key, in PEM and on disk.
type KeyPair struct {
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
}

// TLSCertificate returns the pair for a tls.Config.
func (k KeyPair) TLSCertificate() tls.Certificate {
	c, err := tls.X509KeyPair(k.CertPEM, k.KeyPEM)
	if err != nil {
		panic(err) // we made both halves ourselves
	}
	return c
}

var serial = big.NewInt(time.Now().UnixNano())

// ServingCert issues a server certificate for hosts (IP addresses or DNS names).
func (p *PKI) ServingCert(t testing.TB, name string, hosts ...string) KeyPair {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return p.issue(t, name, tmpl)
}

// ClientCert issues a client certificate; the apiserver reads the common
// name as the user name and the organisations as groups.
func (p *PKI) ClientCert(t testing.TB, user string, groups ...string) KeyPair {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return p.issue(t, "client-"+user, tmpl)
}

// ServerTLS returns a tls.Config that serves a certificate for 127.0.0.1.
func (p *PKI) ServerTLS(t testing.TB) *tls.Config {
	kp := p.ServingCert(t, "server", "127.0.0.1", "localhost")
	return &tls.Config{Certificates: []tls.Certificate{kp.TLSCertificate()}, MinVersion: tls.VersionTLS12}
}

func (p *PKI) issue(t testing.TB, name string, tmpl *x509.Certificate) KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = new(big.Int).Add(serial, big.NewInt(time.Now().UnixNano()))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("issue %s: %v", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kp := KeyPair{CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("EC PRIVATE KEY", keyDER)}
	base := fmt.Sprintf("%s-%d", name, tmpl.SerialNumber.Int64()%1e9)
	kp.CertFile = p.write(t, base+".crt", kp.CertPEM)
	kp.KeyFile = p.write(t, base+".key", kp.KeyPEM)
	return kp
}

// signingKey writes a key pair for service-account tokens.
func (p *PKI) signingKey(t testing.TB) (keyFile, pubFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(key)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	return p.write(t, "sa.key", pemBlock("EC PRIVATE KEY", der)), p.write(t, "sa.pub", pemBlock("PUBLIC KEY", pub))
}

func (p *PKI) write(t testing.TB, name string, data []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
