package tlsconf

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Expiry is how long one certificate in force has left.
type Expiry struct {
	Role      string // "server", "intermediate" or "client CA"
	Subject   string
	NotBefore time.Time
	NotAfter  time.Time
	Left      time.Duration // negative once expired
	DaysLeft  int
	// RenewDue is true when less than a third of the certificate's
	// lifetime is left (certmagic's renewal point): with 90-day
	// certificates that is 30 days, with 6-day ones 2 days. A fixed "30
	// days" warning would fire for a short-lived certificate from its
	// first day.
	RenewDue bool
	Expired  bool
}

func (e Expiry) String() string {
	switch {
	case e.Expired:
		return fmt.Sprintf("%s %q expired %s ago", e.Role, e.Subject, (-e.Left).Round(time.Hour))
	case e.RenewDue:
		return fmt.Sprintf("%s %q expires in %d days: renew it now", e.Role, e.Subject, e.DaysLeft)
	}
	return fmt.Sprintf("%s %q expires in %d days", e.Role, e.Subject, e.DaysLeft)
}

func expiryOf(role string, c *x509.Certificate, now time.Time) Expiry {
	left := c.NotAfter.Sub(now)
	life := c.NotAfter.Sub(c.NotBefore)
	return Expiry{
		Role: role, Subject: c.Subject.CommonName, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		Left: left, DaysLeft: int(left.Hours() / 24),
		RenewDue: left < life/3, Expired: left <= 0,
	}
}

func expiries(s *snapshot, now time.Time) []Expiry {
	var out []Expiry
	for i, c := range s.chain {
		role := "server"
		if i > 0 {
			role = "intermediate"
		}
		out = append(out, expiryOf(role, c, now))
	}
	for _, c := range s.clientCAs {
		out = append(out, expiryOf("client CA", c, now))
	}
	return out
}
