// Package dashboard is the Guard's security dashboard: web pages an
// operator under attack looks at instead of reading logs, and acts from.
//
// # The model
//
// A Dashboard is an http.Handler over the same components as the admin
// API (package adminapi): it reads the Guard's counters, the trust
// tracker, the ban list and the connected sessions through an
// *adminapi.Handler, and acts through its Kick, Ban, Lift and Pardon,
// so a ban made in the page is saved, logged and propagated exactly as
// one made with the API. Its pages are rendered on the server
// (html/template) and embedded in the binary with their style sheet and
// one small script: nothing is fetched from another origin, and there
// is no build step.
//
//	/             overview: connected clients, decisions per second by
//	              verdict, refusals by component (charts over the last
//	              ten minutes, SVG drawn on the server), punished clients,
//	              bans, fleet and plugin health, the latest refusals
//	/clients      connected and punished clients with trust state, score,
//	              since, last violation and last refusal; kick, pardon, ban
//	/bans         the ban list; add (kind, value, duration, reason), lift
//	/live         refusals as they happen (server-sent events from /events),
//	              filtered by client, topic or address, held on hover
//	/devices      push-interval profiles and the devices breaking them
//	/plugins      per plugin calls, failures, fuel and memory, breaker;
//	              enable, disable
//
// The tables refresh every two seconds (the script asks for the page's
// <main> again), except while a field in them has the focus.
//
// # The live view and the Feed
//
// The Guard tells Config.OnRefusal about every refusal; a Feed's Add
// copies it into a ring of fixed-size slots, allocated once (2,048 by
// default, about 2.5 MiB): the Guard never allocates for it, a flood
// overwrites the oldest refusals instead of growing memory, and a topic
// that points into a broker's reused buffer is copied, never kept. A
// live view reads the ring five times a second, in small batches under
// the lock, and sends at most 100 refusals a tick; the rest of a flood
// is counted as missed, so neither the Guard nor the browser can be
// made to fall behind.
//
// # Security of the page itself
//
// The Dashboard assumes its host authenticates the operator:
// RequireLogin is that for the examples — a sign-in page that takes the
// admin token and gives a session cookie (HttpOnly, SameSite=Strict,
// Secure over TLS); the right token is never refused, so the token's
// strength, not a lockout, is what stands against guessing. Whatever
// the authentication, every state-changing request must come from the
// page's own origin (http.CrossOriginProtection) and carry the page's
// CSRF token — an HMAC, with a key of the Dashboard's own, of the
// session (or of a cookie, under a host's own authentication), which a
// page on another port of the host cannot compute even when it sets
// cookies here — and every answer carries a strict
// Content-Security-Policy (script and style from this origin only, no
// inline script, no framing). Messages a page shows after an action
// are signed the same way: a link cannot make the dashboard say
// something. There are no default credentials: with no token there is
// no way in.
//
// The example broker, the example proxy and the mosquitto plugin serve
// it at http://<admin.listen>/dashboard/ (package guardstack).
package dashboard
