package mqttguard_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/trust"
)

// apiKeys admits clients whose password is a known API key: a third kind
// of credential beside passwd and client certificates, written without
// touching the Guard.
type apiKeys map[string]string // key → device

func (k apiKeys) Authenticate(_ context.Context, username string, password []byte, method string, _ []byte, _ *x509.Certificate) (string, time.Time, []byte, error) {
	if method != "" || !strings.HasPrefix(string(password), "key-") {
		return "", time.Time{}, nil, nil // not an API key: the next authenticator's
	}
	if dev, ok := k[string(password)]; ok {
		return dev, time.Time{}, nil, nil
	}
	return "", time.Time{}, nil, fmt.Errorf("unknown API key")
}

func ExampleAuthenticator() {
	g, _ := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull,
		Authenticators: []mqttguard.Authenticator{apiKeys{"key-3f9a": "pump-12"}}})
	for _, pw := range []string{"key-3f9a", "key-0000", "hunter2"} {
		c, d := g.Connect(context.Background(), &mqttguard.ConnectRequest{ClientID: "c1", Username: "any",
			Password: []byte(pw), HasPassword: true, ProtocolVersion: 5}, time.Now())
		fmt.Printf("%-9s %v %q\n", pw, d, c.Username)
	}
	// Output:
	// key-3f9a  allow "pump-12"
	// key-0000  reject 0x86 by password: unknown API key "any"
	// hunter2   reject 0x86 by password: no authenticator admits these credentials "any"
}
