package passwd

import "time"

// Cached reports whether a success of username and password with the
// file in force is remembered (VerifyLimits.CacheFor): true means
// VerifyContext would answer true at once, without a hash. False says
// nothing (not remembered, or wrong). A broker asks it before it makes a
// client wait its turn to be verified: a device that reconnects with the
// password it used a moment ago never waits behind a guesser.
func (h *Holder) Cached(username, password string) bool {
	f := h.f.Load()
	v := h.verifier()
	if f == nil || v.lim.CacheFor <= 0 {
		return false
	}
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	return v.hit(v.cacheKey(username, password), f, now())
}
