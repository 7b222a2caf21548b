// Package adminapi is the Guard's admin API as an http.Handler that a
// program mounts on its own mux, behind its own authentication
// (RequireToken gives the examples' bearer token):
//
//	GET    /healthz                     liveness
//	GET    /metrics                     Prometheus text (Handler.Metrics)
//	GET    /clients                     connected clients with trust state and score
//	POST   /clients/{id}/kick           disconnect a client (0x98)
//	GET    /bans                        the ban list
//	POST   /bans                        add one: {"kind": "client", "value": "x", "for": "1h", "reason": "…"}
//	DELETE /bans/{kind}/{value}         lift one (?username= for a client ban scoped to a username)
//	GET    /trust                       punished clients, usernames and addresses (?state=write-disabled: that or worse)
//	POST   /trust/pardon                put one back to normal: {"dimension": "client", "key": "x", "username": "u"}
//	                                    (a username's pardon pardons its clients too)
//	GET    /plugins                     plugins with their stats
//	POST   /plugins/{name}/disable      take a plugin out (its calls allow)
//	POST   /plugins/{name}/enable       put it back (and lift a quarantine)
//	POST   /mode/{mode}                 observe, light or full
//	POST   /reload                      what SIGHUP does (Handler.Reload)
//
// Every answer is JSON; an error is {"error": "…"} with a 4xx status
// that says what was wrong with the request. A change to the ban list or
// a trust record is saved (Handler.SaveBans, SaveTrust) before the answer
// says it is done.
//
// The example broker, the example proxy and any program built on
// package guardstack serve it at admin.listen; it is tested with
// httptest alone, no listener needed.
package adminapi
