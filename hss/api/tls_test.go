package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/hss/api"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestTLS serves the API with a certificate: HTTPS answers, plain HTTP
// gets no API.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hss.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)

	dsn, _ := pgtest.Migrated(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tokens := &api.Tokens{}
	if err := tokens.Add(adminToken, api.RoleAdmin, "admin"); err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{DB: pool, Tokens: tokens, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, certFile, keyFile) }()
	defer func() { cancel(); <-done }()
	pool2 := x509.NewCertPool()
	pool2.AddCert(must(x509.ParseCertificate(der)))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool2}}, Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/api/v1/profiles", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("HTTPS: %d %v", res.StatusCode, res.TLS)
	}
	res, err = http.Get("http://" + ln.Addr().String() + "/api/v1/profiles")
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS listener: %d", res.StatusCode)
		}
	}
	// Tokens: short ones and unknown roles are refused.
	for _, line := range []string{"admin short", "root " + adminToken, "admin"} {
		if err := (&api.Tokens{}).ReadTokens(strings.NewReader(line), "f"); err == nil {
			t.Errorf("token line %q accepted", line)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
