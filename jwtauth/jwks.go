package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a JWKS response: a provider's set is a few KiB.
const maxJWKSBytes = 1 << 20

// jwks keeps the identity provider's key set: fetched at start, every
// JWKSRefresh, and when a token names an unknown kid (at most
// UnknownKIDRefreshes a minute). The last good set stays in force while
// the provider cannot be reached.
type jwks struct {
	cfg *Config
	set atomic.Pointer[map[string]any] // kid → public key

	mu       sync.Mutex
	inflight chan struct{} // closed when the fetch in flight ends
	recent   []time.Time   // unknown-kid fetches in the last minute

	stop   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fetches, fetchErrors, unknownFetches, unknownLimited atomic.Uint64
}

func newJWKS(cfg *Config) *jwks {
	j := &jwks{cfg: cfg}
	j.stop, j.cancel = context.WithCancel(context.Background())
	empty := map[string]any{}
	j.set.Store(&empty)
	first := j.refresh()
	j.wg.Add(1)
	go j.loop(first)
	return j
}

// key returns the key kid names, nil if the set has none.
func (j *jwks) key(kid string) any { return (*j.set.Load())[kid] }

// loaded reports whether a fetch ever succeeded.
func (j *jwks) loaded() bool { return len(*j.set.Load()) > 0 }

// loop fetches the set every JWKSRefresh, and every 30 s while no fetch
// has succeeded.
func (j *jwks) loop(first chan struct{}) {
	defer j.wg.Done()
	select {
	case <-first:
	case <-j.stop.Done():
		return
	}
	for {
		wait := j.cfg.JWKSRefresh
		if !j.loaded() {
			wait = min(wait, 30*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			<-j.refresh()
		case <-j.stop.Done():
			t.Stop()
			return
		}
	}
}

// refreshForUnknown asks for a fetch because a token named an unknown
// kid, if the minute's allowance has room, and returns the channel that
// closes when it ends (nil: no room).
func (j *jwks) refreshForUnknown(now time.Time) chan struct{} {
	j.mu.Lock()
	if j.inflight != nil {
		ch := j.inflight
		j.mu.Unlock()
		return ch // a fetch is on its way: wait for it
	}
	keep := j.recent[:0]
	for _, t := range j.recent {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	j.recent = keep
	if len(j.recent) >= j.cfg.UnknownKIDRefreshes {
		j.mu.Unlock()
		j.unknownLimited.Add(1)
		return nil
	}
	j.recent = append(j.recent, now)
	j.mu.Unlock()
	j.unknownFetches.Add(1)
	return j.refresh()
}

// refresh starts a fetch unless one is in flight, and returns the
// channel that closes when it ends.
func (j *jwks) refresh() chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil {
		return j.inflight
	}
	ch := make(chan struct{})
	j.inflight = ch
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		err := j.fetch()
		j.mu.Lock()
		j.inflight = nil
		j.mu.Unlock()
		close(ch)
		if err != nil && j.cfg.Logger != nil {
			j.cfg.Logger.Warn("jwtauth: JWKS fetch failed; the keys fetched last stay in force", "url", j.cfg.JWKSURL, "error", err)
		}
	}()
	return ch
}

func (j *jwks) fetch() error {
	j.fetches.Add(1)
	ctx, cancel := context.WithTimeout(j.stop, j.cfg.FetchTimeout)
	defer cancel()
	keys, err := j.get(ctx)
	if err != nil {
		j.fetchErrors.Add(1)
		return err
	}
	old := *j.set.Load()
	j.set.Store(&keys)
	if j.cfg.Logger != nil {
		added := 0
		for kid := range keys {
			if _, had := old[kid]; !had {
				added++
			}
		}
		if added > 0 || len(keys) != len(old) {
			j.cfg.Logger.Info("jwtauth: JWKS keys in force", "url", j.cfg.JWKSURL, "keys", len(keys), "new", added)
		}
	}
	return nil
}

func (j *jwks) get(ctx context.Context) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", j.cfg.JWKSURL, resp.Status)
	}
	if resp.Request != nil && resp.Request.URL.Scheme != req.URL.Scheme {
		// Whatever client was given: keys asked for over https never
		// come over plain http after a redirect.
		return nil, fmt.Errorf("GET %s: redirected to %s", j.cfg.JWKSURL, resp.Request.URL.Redacted())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: the key set is over %d bytes", j.cfg.JWKSURL, maxJWKSBytes)
	}
	return parseJWKS(body, j.cfg.Algorithms)
}

// parseJWKS reads a JWK Set and keeps the signature keys with a kid
// whose type one of algs can use; a key it cannot read is skipped, not
// fatal (a provider may publish keys for other uses). A set with no
// usable key is an error: the keys in force stay.
func parseJWKS(body []byte, algs []string) (map[string]any, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("the key set is not a JWK Set: %w", err)
	}
	keys := map[string]any{}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pub := k.Public() // never keep a private key a provider leaked
		if !pub.Valid() {
			continue
		}
		usable := false
		for _, a := range algsFor(pub.Key) {
			if containsAlg(algs, a) && (k.Algorithm == "" || k.Algorithm == string(a)) {
				usable = true
			}
		}
		if usable {
			keys[k.KeyID] = pub.Key
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the key set has no signature key with a kid for %v", algs)
	}
	return keys, nil
}

func containsAlg(algs []string, a jose.SignatureAlgorithm) bool {
	for _, x := range algs {
		if x == string(a) {
			return true
		}
	}
	return false
}

// close stops the refreshes and waits for the fetch in flight.
func (j *jwks) close() {
	j.cancel()
	j.wg.Wait()
}
