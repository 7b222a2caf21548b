package tlsconf_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"

	"github.com/mqttguard/mqttguard/tlsconf"
)

func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "pki")
	defer os.RemoveAll(dir)
	dev, _ := tlsconf.GenerateDev(dir) // a development CA, server and client certificate

	cfg, err := tlsconf.Load(tlsconf.Config{
		CertFile:     dev.ServerCert,
		KeyFile:      dev.ServerKey,
		ClientCAFile: dev.CACert,
		ClientAuth:   tlsconf.RequestClientCert, // verified if given, never trusted unverified
	})
	if err != nil {
		fmt.Println(tlsconf.Explain(err))
		return
	}
	fmt.Println(cfg.MinVersion == tls.VersionTLS12, len(cfg.CipherSuites))
	// Output:
	// true 6
}

func ExampleReloader() {
	dir, _ := os.MkdirTemp("", "pki")
	defer os.RemoveAll(dir)
	dev, _ := tlsconf.GenerateDev(dir)

	r, err := tlsconf.NewReloader(tlsconf.Config{CertFile: dev.ServerCert, KeyFile: dev.ServerKey})
	if err != nil {
		fmt.Println(err)
		return
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	ln := tls.NewListener(l, r.TLSConfig()) // every handshake gets the snapshot in force
	_ = ln

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Watch(ctx, 0) // poll every minute; on SIGHUP call r.Reload()

	// A rotation that is only half done is refused; the old pair serves on.
	os.WriteFile(dev.ServerKey, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600)
	_, err = r.Reload()
	fmt.Println(err != nil, r.Generation())
	// Output:
	// true 1
}

func ExampleExplain() {
	_, err := tlsconf.Load(tlsconf.Config{CertFile: "/nonexistent/fullchain.pem", KeyFile: "/nonexistent/key.pem"})
	fmt.Println(tlsconf.Explain(err))
	// Output:
	// tlsconf: CertFile /nonexistent/fullchain.pem: cannot read: open /nonexistent/fullchain.pem: no such file or directory
}
