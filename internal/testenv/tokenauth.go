package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// WithTokenAuth makes the registry require bearer tokens, the flow of
// Docker Hub and most hosted registries: a client that is refused is sent
// to a token server (in process, plain HTTP on 127.0.0.1) which takes
// user's basic credentials and issues a token for the scopes asked. The
// registry itself still serves plain HTTP. AuthFile works as with
// WithTLSAuth.
func WithTokenAuth(user, password string) RegistryOption {
	return func(r *Registry) { r.User, r.Password, r.token = user, password, true }
}

// tokenServer issues registry tokens (JWT, ES256, the signing certificate
// in x5c) for one account.
type tokenServer struct {
	user, password string
	key            *ecdsa.PrivateKey
	certDER        []byte
	srv            *httptest.Server
}

const tokenService, tokenIssuer = "nixpush-test-registry", "nixpush-test-token-issuer"

// startTokenServer starts the token server and returns the registry
// configuration that trusts it.
func (r *Registry) startTokenServer(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: tokenIssuer},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(r.dir, "token-root.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{user: r.User, password: r.Password, key: key, certDER: der}
	ts.srv = httptest.NewServer(ts)
	t.Cleanup(ts.srv.Close)
	return fmt.Sprintf("auth: {token: {realm: %q, service: %q, issuer: %q, rootcertbundle: %q}}\n",
		ts.srv.URL+"/token", tokenService, tokenIssuer, bundle)
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	user, pass, ok := req.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(ts.user)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(ts.password)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="nixpush-test-token"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var granted []access
	for _, scope := range req.URL.Query()["scope"] {
		// repository:NAME:pull,push (NAME may hold a ':' for a port).
		i, j := strings.Index(scope, ":"), strings.LastIndex(scope, ":")
		if i < 0 || j <= i {
			continue
		}
		granted = append(granted, access{Type: scope[:i], Name: scope[i+1 : j], Actions: strings.Split(scope[j+1:], ",")})
	}
	now := time.Now()
	claims := map[string]any{
		"iss": tokenIssuer, "sub": user, "aud": req.URL.Query().Get("service"),
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": granted,
	}
	tok, err := ts.sign(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 3600, "issued_at": now.UTC().Format(time.RFC3339)}) //nolint:errcheck
}

// sign makes a compact JWS (ES256) of claims.
func (ts *tokenServer) sign(claims map[string]any) (string, error) {
	enc := base64.RawURLEncoding
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig), nil
}
