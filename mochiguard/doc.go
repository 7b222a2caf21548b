// Package mochiguard puts the Guard into a mochi-mqtt v2 broker: a hook
// (New) that answers every decision point of mochi — CONNECT, PUBLISH,
// SUBSCRIBE, each delivery, wills — with the Guard's decision, and a
// listener (Hook.Listen) that checks packets before mochi parses them.
//
//	g, _ := mqttguard.New(cfg)
//	srv := mqtt.New(&mqtt.Options{InlineClient: true})
//	hook := mochiguard.New(g, srv, mochiguard.Options{})
//	srv.AddHook(hook, nil)
//	srv.AddListener(hook.Listen("tcp", ln, packets.ListenerConfig{}))
//	if err := hook.Check(); err != nil { ... } // before srv.Serve()
//
// What it corrects in mochi-mqtt v2.7.9, and why:
//
//   - A refusal in OnConnect sends no CONNACK (the client sees the
//     connection drop), and mochi maps few MQTT 5 codes to 3.1.1: the
//     hook writes the CONNACK itself, with reason.Code.V3Connack for
//     3.1.1 clients.
//   - An OnPublish error either sends no acknowledgement (QoS 1 clients
//     wait forever) or a PUBACK even for QoS 2, and a QoS 0 or 3.1.1
//     publish that was refused with a code is delivered anyway: the hook
//     writes PUBACK/PUBREC with the Guard's code (MQTT 5) and drops the
//     message otherwise.
//   - Acknowledgements echo the publisher's properties and may carry codes
//     their packet may not; messages get an expiry they were not sent
//     with: New sets the capabilities that stop both.
//   - OnACLCheck cannot tell a SUBSCRIBE from a delivery, and is asked for
//     a delivery before its QoS and retain flag are known: every PUBLISH
//     to a client — live, retained, queued while offline, resent, a will —
//     is decided as mochi encodes it, with its real QoS and retain flag.
//   - Sessions outlive connections and mochi hands them to whoever claims
//     the client ID: a session belongs to the identity that made it.
//   - Wills are published without any check (mochi #503) and delayed ones
//     without asking again: the hook checks them when they go out.
//   - Packets are read whole before authentication, of any size (mochi
//     #502): Hook.Listen puts the packet validator in front.
//   - A delivery that finds its subscriber's outbound queue full is
//     dropped, at any QoS: a fan-in of many publishers into one
//     subscriber that reads lost nine messages in ten. The publisher
//     waits for a subscriber that drains (Options.DeliveryWait), and
//     not for one that does not: see pace.go.
//   - Authentication and ACL answers are OR-combined across hooks:
//     Hook.Check refuses to work beside another hook that gives them, and
//     the hook fails closed until it is removed.
//
// The package depends on mochi-mqtt and this module only. The example
// broker (examples/broker) composes it with the configuration file and
// admin API of packages guardconf and guardstack.
package mochiguard
