// Package jwtauth authenticates MQTT clients by a signed JSON Web Token
// (RFC 7519) in their CONNECT: the token is the client's identity, the
// time its session may last, and optionally the session's own ACL.
//
// # The model
//
// A device gets a token from its identity provider and sends it as its
// MQTT password (Config.FromUsername: as its username). The broker
// checks, in order:
//
//   - the token's form: three base64url parts. A password that is not a
//     token is not this package's to judge (Authenticate answers "no
//     opinion", and the next authenticator — a password file — decides);
//     anything that is a token is decided here, so a forged token is
//     never tried as a password;
//   - the algorithm, which must be one of Config.Algorithms: the token's
//     header never chooses it alone, so "alg": "none" and HS256 signed
//     with an RSA public key (algorithm confusion) are refused;
//   - the key: chosen by the header's "kid" among the configured keys and
//     the JWKS (Config.JWKSURL); a key is only ever used with the
//     algorithms of its type (an RSA key never verifies an HMAC);
//   - the claims: "exp" is required (Config.AllowNoExpiry turns that
//     off) and "exp", "nbf" and "iat" are honoured with Config.Leeway;
//     "iss" and "aud" when configured; and every claim in Config.Claims
//     must equal its value, with %u for the CONNECT's username and %c for
//     its client ID ("sub" = "%c" ties a token to one device);
//   - the identity: the claim Config.IdentityClaim ("sub"); a CONNECT
//     that also names a username must name that one.
//
// A token that fails any check is refused with an error that says which
// (Verify returns it; the Guard logs it as the refusal's cause). It
// counts against the client's address, never against the identity it
// claims. A JWKS that cannot be fetched is an answer of "busy", not a
// refusal, and counts against nobody.
//
// # Keys and the identity provider
//
// Keys come from Config.Secret (HMAC), Config.PublicKeys (RSA, ECDSA,
// Ed25519; ParsePublicKeys reads PEM) and Config.JWKSURL. The JWKS is
// fetched at New and every Config.JWKSRefresh after; a token whose "kid"
// is unknown triggers a refresh, at most Config.UnknownKIDRefreshes a
// minute, so that a flood of forged kids cannot turn the broker into an
// amplifier against the provider, while a rotated key is picked up at
// once. A CONNECT waits for such a refresh at most until its context
// ends. A provider that cannot be reached leaves the last good keys in
// force.
//
// # Permissions from the token
//
// The claim Config.ACLClaim ("acl") may carry the session's own ACL in
// either of EMQX's formats, compiled into package acl's rules (so %u,
// %c, ${username} and ${clientid} are whole-level placeholders that a
// username or client ID with '/', '+' or '#' never satisfies):
//
//	{"acl": {"pub": ["sensors/${clientid}/#"], "sub": ["cmd/${clientid}"], "all": []}}
//	{"acl": [{"permission": "allow", "action": "publish", "topic": "sensors/${clientid}/#", "qos": [0, 1], "retain": false},
//	         {"permission": "deny", "action": "all", "topic": "#"}]}
//
// The first is a list of allowed filters per action; the second is a
// rule list decided in order, the first matching rule winning. Either
// way, what the claim does not allow is denied: a token's ACL is the
// session's whole ACL, it replaces the broker's rules for that session
// and ends with it. A token without the claim leaves the broker's ACL
// in force.
//
// # Expiry
//
// Verify returns the token's "exp": the Guard keeps it as the client's
// Expires, and the broker disconnects the client then (MQTT 5:
// DISCONNECT 0xA0, "maximum connect time"). The example broker, the
// proxy and the mosquitto plugin do.
package jwtauth
