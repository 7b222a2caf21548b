package mqttguard

// Message is a PUBLISH (or a will) as the Guard sees it.
type Message struct {
	Topic string
	// Payload is read only while a decision is taken, never kept or
	// written: a broker may lend its own buffer (the mosquitto plugin
	// passes mosquitto's memory without a copy).
	Payload []byte
	QoS     byte
	Retain  bool
	// Subscribers is how many subscriptions the message will reach, when
	// the broker can count them (ratelimit.FanoutCost prices the topic
	// limit by it in EnforceFull); negative when unknown.
	Subscribers int
}
