package mochiguard

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// Stacking hooks.
//
// mochi OR-combines the answers of every hook to OnConnectAuthenticate
// and OnACLCheck: one hook saying yes is enough. The Guard refuses where
// mochi takes the first refusal of any hook instead — a CONNECT in
// OnConnect, a PUBLISH in OnPublish, each delivery as it is encoded — but
// it also answers OnACLCheck, to keep a message a subscriber may not
// read, or whose account holds its quota of queued messages, out of that
// subscriber's queue. A second hook that answers OnACLCheck with yes
// (mochi's auth.AllowHook, auth.Hook with a ledger that allows) would
// lift those bounds; one that answers OnConnectAuthenticate with yes is
// a sign the program means it to admit clients, which it cannot. So the
// hook refuses to work beside one: Check says which, and until it is
// removed every CONNECT is refused with 0x88 (server unavailable) and the
// reason is logged.
//
// mochi v2.7.9 has no accessor for its hooks; Check reads the server's
// unexported hook list (a *mqtt.Hooks) through reflection, read only. If
// a later mochi renames it, Check says it cannot tell, and refuses too:
// a security hook must not be silently weakened.

// Check reports whether the hook is the only one on its server that
// answers OnConnectAuthenticate or OnACLCheck, and the first of those
// that take part in its decisions (OnConnect, OnPublish, OnSubscribe,
// OnPacketRead, OnPacketEncode, OnWill, OnSelectSubscribers): mochi stops
// at the first hook that refuses, so one before the Guard's could end
// the chain before the Guard decides. Call it after adding every hook
// and before Serve to fail at start; the hook calls it itself for every
// CONNECT and refuses every client while it fails.
func (h *Hook) Check() error {
	// The list's place is fixed when mqtt.New makes the server; it is
	// looked up once (it is asked for every CONNECT and SUBSCRIBE).
	h.hooksOnce.Do(func() { h.hooks, h.hooksErr = serverHooks(h.srv) })
	if h.hooksErr != nil {
		return h.hooksErr
	}
	hooks := h.hooks
	var others, before []string
	seen := false
	for _, other := range hooks.GetAll() {
		if other == mqtt.Hook(h) {
			seen = true
			continue
		}
		name := fmt.Sprintf("%s (%T)", other.ID(), other)
		if other.Provides(mqtt.OnConnectAuthenticate) || other.Provides(mqtt.OnACLCheck) {
			others = append(others, name)
		} else if !seen && slices.ContainsFunc(decides, other.Provides) {
			before = append(before, name)
		}
	}
	switch {
	case len(others) > 0:
		return fmt.Errorf("mochiguard: hook %s also answers OnConnectAuthenticate or OnACLCheck, which mochi OR-combines with the Guard's answers: it could admit or deliver what the Guard refuses; remove it (the Guard authenticates and authorizes)", strings.Join(others, ", "))
	case len(before) > 0:
		// mochi stops at the first hook that returns an error from
		// OnConnect, OnPublish, …: one added before the Guard's could
		// end the chain before the Guard decides, and mochi delivers a
		// QoS 0 or 3.1.1 publish refused with a code anyway.
		return fmt.Errorf("mochiguard: hook %s was added before the Guard's and takes part in the decisions mochi stops at the first error of: add the Guard's hook first", strings.Join(before, ", "))
	}
	return nil
}

// decides are the events where mochi's chain of hooks stops at the
// first hook that refuses, or where a hook changes what the next one
// sees: the Guard must be first in them.
var decides = []byte{mqtt.OnConnect, mqtt.OnPublish, mqtt.OnSubscribe, mqtt.OnPacketRead, mqtt.OnPacketEncode,
	mqtt.OnWill, mqtt.OnSelectSubscribers}

// serverHooks is srv's hook list.
func serverHooks(srv *mqtt.Server) (*mqtt.Hooks, error) {
	f := reflect.ValueOf(srv).Elem().FieldByName("hooks")
	if !f.IsValid() || f.Type() != reflect.TypeOf((*mqtt.Hooks)(nil)) || f.IsNil() {
		return nil, fmt.Errorf("mochiguard: cannot list this mochi-mqtt server's hooks (a version other than v2.7.9?), so cannot tell whether another hook would weaken the Guard")
	}
	// The field is unexported: reflect hands out its value read-only,
	// and the pointer it holds is what mochi's own methods use.
	return (*mqtt.Hooks)(unsafe.Pointer(f.Pointer())), nil
}
