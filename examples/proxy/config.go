package main

import (
	"net"
	"time"

	"github.com/mqttguard/mqttguard/guardconf"
)

// proxyConfig is the proxy's own table in the configuration file, beside
// the Guard's (a guardconf.Extension).
type proxyConfig struct {
	Upstream UpstreamConfig `toml:"upstream"`
}

// UpstreamConfig is where the proxy forwards what passes.
type UpstreamConfig struct {
	Addr          string `toml:"addr"` // host:port
	TLS           bool   `toml:"tls"`
	TLSCACertPath string `toml:"tls_ca_cert_path"` // "" with tls: the system roots
	TLSServerName string `toml:"tls_server_name"`
	TLSCertPath   string `toml:"tls_cert_path"` // a client certificate for the upstream, if it wants one
	TLSKeyPath    string `toml:"tls_key_path"`
	// Username and Password, when set, are what every client is
	// connected upstream with: the proxy authenticated it already, and
	// the upstream trusts the proxy. Empty: the client's own credentials
	// go upstream (its certificate's name as username with
	// use_identity_as_username).
	Username       string        `toml:"username"`
	Password       string        `toml:"password" secret:"true"`
	ConnectTimeout time.Duration `toml:"connect_timeout"`
}

// Validate checks [upstream], naming the line of a bad value.
func (p *proxyConfig) Validate(c *guardconf.Config) error {
	u := p.Upstream
	if u.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(u.Addr); err != nil {
		return c.Errorf("upstream.addr", "%q: want host:port", u.Addr)
	}
	if (u.TLSCertPath == "") != (u.TLSKeyPath == "") {
		return c.Errorf("upstream.tls_cert_path", "give both tls_cert_path and tls_key_path, or neither")
	}
	if u.ConnectTimeout < 0 {
		return c.Errorf("upstream.connect_timeout", "must not be negative")
	}
	return nil
}

// upstreamOf is the [upstream] table of a configuration the proxy read.
func upstreamOf(c *guardconf.Config) *UpstreamConfig {
	if p, ok := c.Extension.(*proxyConfig); ok {
		return &p.Upstream
	}
	return &UpstreamConfig{}
}
