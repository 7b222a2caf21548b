// Package mochiguard puts the Guard into a mochi-mqtt v2 broker: a hook
// (New) that answers every decision point of mochi — CONNECT, PUBLISH,
// SUBSCRIBE, each delivery, wills — with the Guard's decision, written
// the way MQTT wants it (CONNACKs for both protocol versions, PUBACK and
// PUBREC reason codes, SUBACKs, DISCONNECTs), and with mochi's quirks
// answered: OR-combined auth hooks, an ACL hook that cannot tell a
// SUBSCRIBE from a delivery, sessions handed to whoever claims the
// client ID, wills published without any check (mochi #503), resent
// in-flight messages.
//
// It depends on mochi-mqtt and this module's root package only. The
// example broker (examples/broker) composes it with the packet-
// validating listeners and the admin API of package guardstack.
package mochiguard
