//go:build mosquitto && cgo

package main

/*
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <mosquitto_broker.h>
*/
import "C"

import (
	"crypto/x509"
	"log/slog"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/mqttguard/mqttguard"
)

// The functions the C shim (shim.c) calls from mosquitto's callbacks.
// They run on mosquitto's broker thread; so do the mosquitto API calls
// they make.

var plug *plugin

//export mqttguardInit
func mqttguardInit(config *C.char) C.int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("plugin", "mqttguard")
	if config == nil {
		log.Error("plugin_opt_config is not set: give the path of the mqttguard configuration file")
		return 1
	}
	p, err := newPlugin(C.GoString(config), log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	plug = p
	return 0
}

//export mqttguardBasicAuth
func mqttguardBasicAuth(client unsafe.Pointer, username, password *C.char, der unsafe.Pointer, derLen C.int) C.int {
	cl := (*C.struct_mosquitto)(client)
	req := &mqttguard.ConnectRequest{
		ClientID:        C.GoString(C.mosquitto_client_id(cl)),
		ProtocolVersion: byte(C.mosquitto_client_protocol_version(cl)),
	}
	if username != nil {
		req.Username = C.GoString(username)
	}
	if password != nil {
		req.Password, req.HasPassword = []byte(C.GoString(password)), true
	}
	if a, err := netip.ParseAddr(C.GoString(C.mosquitto_client_address(cl))); err == nil {
		req.Addr = netip.AddrPortFrom(a, 0)
	}
	if der != nil {
		// mosquitto verified it (require_certificate) before CONNECT.
		cert, err := x509.ParseCertificate(C.GoBytes(der, derLen))
		if err != nil {
			plug.st.Log.Warn("refused a client whose certificate mosquitto verified but Go cannot parse", "client", req.ClientID, "error", err)
			return mosqErrAuth
		}
		req.Certificate = cert
	}
	clean := bool(C.mosquitto_client_clean_session(cl))
	return C.int(plug.basicAuth(uintptr(client), req, clean, time.Now()))
}

//export mqttguardACLCheck
func mqttguardACLCheck(client unsafe.Pointer, clientID *C.char, access C.int, topic *C.char, payload unsafe.Pointer, payloadlen C.uint32_t, qos C.uint8_t, retain C.bool) C.int {
	var body []byte
	if access == aclWrite && payload != nil && payloadlen > 0 {
		// mosquitto's own memory, not copied: the Guard reads a payload
		// only while it decides and keeps none of it. A copy cost a
		// payload-sized allocation per message, and the garbage
		// collections they caused competed with mosquitto for the CPU.
		body = unsafe.Slice((*byte)(payload), int(payloadlen))
	}
	var name string
	if access == aclRead {
		// A delivery's check keeps nothing of the topic (the ACL only
		// looks it up): mosquitto's string, lent, spares an allocation
		// per delivery. A publish's and a subscription's topics may be
		// kept (rate-limit keys), so they are copied.
		name = unsafe.String((*byte)(unsafe.Pointer(topic)), C.strlen(topic))
	} else {
		name = C.GoString(topic)
	}
	var id string
	if clientID != nil {
		id = unsafe.String((*byte)(unsafe.Pointer(clientID)), C.strlen(clientID)) // compared, not kept
	}
	return C.int(plug.aclCheck(uintptr(client), id, int(access), name, body, byte(qos), bool(retain), time.Now()))
}

//export mqttguardDisconnect
func mqttguardDisconnect(client unsafe.Pointer) { plug.disconnect(uintptr(client), time.Now()) }

//export mqttguardTick
func mqttguardTick() {
	for _, id := range plug.tick() {
		plug.st.Log.Info("disconnecting a client", "client", id)
		cid := C.CString(id)
		// The will is sent if the Guard lets it (a banned client's is
		// not): mosquitto checks it as a MOSQ_ACL_WRITE after the
		// disconnect event.
		C.mosquitto_kick_client_by_clientid(cid, true)
		C.free(unsafe.Pointer(cid))
	}
}

//export mqttguardReload
func mqttguardReload() {
	if err := plug.reload(); err != nil {
		plug.st.Log.Error("reload: some files kept their previous state", "error", err)
	}
}

//export mqttguardCleanup
func mqttguardCleanup() {
	if plug != nil {
		plug.close()
		plug = nil
	}
}
