package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttguard/mqttguard/internal/mqtttest"
	"github.com/mqttguard/mqttguard/internal/testenv"
	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
)

// The differential: one acl_file and one password file, given to a
// mosquitto that decides with its own acl_file/password_file (A) and to
// a mosquitto that decides with the plugin alone (B), whose
// configuration names the same two files. Every cell of clients × topics
// × access kinds is asked of both over real sockets, and the answers
// must be the same except in the cells diffExpected lists, where the
// Guard is stricter on purpose.

// diffACL uses everything mosquitto 2.0's acl_file and our parser both
// read: topic lines before the first user (mosquitto's anonymous list,
// which no user gets), user blocks, pattern lines with %u and %c, the
// access words read, write, readwrite, deny (mosquitto 2.0.0 added deny)
// and none (readwrite), '+' and '#', and '$'-topics.
const diffACL = `# Before the first user line: clients without a username only.
topic read public/#
topic write public/anon-in

user admin
topic readwrite #
topic readwrite $app/#

user alice
topic readwrite home/alice/#
topic deny home/alice/secret
topic write sensors/alice/+/temp
topic read weather/+/now
topic read $app/status/#

user bob
topic home/bob/#
topic read home/+/shared
topic deny home/bob/private/#
topic read $SYS/#
topic read +/status/#

user carol
topic read #
topic deny alerts/#
topic write alerts/carol
topic readwrite data/carol/+

user c+d
topic readwrite c/#

# Every client, once its own list found nothing (wherever the lines are).
pattern read devices/%u/in/#
pattern write devices/%c/out
pattern readwrite data/%u/#
pattern deny data/%u/locked
pattern read sensors/%u/+/temp
pattern write weather/%u/now

# A second block for alice: mosquitto adds to her list.
user alice
topic read news/alice/#
`

// diffUsers are the password file's accounts.
var diffUsers = map[string]string{
	"admin": "pw-admin", "alice": "pw-alice", "bob": "pw-bob", "carol": "pw:carol ü", "dave": "pw-dave", "a/b": "pw-ab",
	"c+d": "pw-cd",
}

// A diffRow is a client of the grid. Client IDs are unique across rows
// (a cell is named by its client ID).
type diffRow struct {
	user, id, pass   string
	hasUser, hasPass bool
	note             string
}

var diffRows = []diffRow{
	{user: "admin", id: "ops", pass: "pw-admin", hasUser: true, hasPass: true},
	{user: "alice", id: "alice-1", pass: "pw-alice", hasUser: true, hasPass: true},
	{user: "bob", id: "bob-1", pass: "pw-bob", hasUser: true, hasPass: true},
	{user: "carol", id: "carol-1", pass: "pw:carol ü", hasUser: true, hasPass: true, note: "':' and 'ü' in the password"},
	{user: "dave", id: "dave-dev", pass: "pw-dave", hasUser: true, hasPass: true, note: "no user block: patterns only, %c"},
	{user: "dave", id: "dave+1", pass: "pw-dave", hasUser: true, hasPass: true, note: "'+' in the client ID: no pattern applies"},
	{user: "dave", id: "dave/x", pass: "pw-dave", hasUser: true, hasPass: true, note: "'/' in the client ID"},
	{user: "a/b", id: "ab-1", pass: "pw-ab", hasUser: true, hasPass: true, note: "'/' in the username"},
	{user: "c+d", id: "cd-1", pass: "pw-cd", hasUser: true, hasPass: true, note: "'+' in the username: its own list only"},
	{user: "alice", id: "alice-bad", pass: "wrong", hasUser: true, hasPass: true, note: "wrong password"},
	{user: "bob", id: "bob-nopass", hasUser: true, note: "no password"},
	{user: "bob", id: "bob-empty", hasUser: true, hasPass: true, note: "empty password"},
	{user: "eve", id: "eve-1", pass: "pw-eve", hasUser: true, hasPass: true, note: "unknown user"},
	{id: "anon-1", note: "anonymous"},
}

// diffTopics are published (PUBLISH), read (READ: the admin publishes
// them, except $SYS, which the broker publishes retained) and
// subscribed to as literal filters (SUBSCRIBE) by every row.
var diffTopics = []string{
	"public/news", "public/anon-in",
	"home/alice", "home/alice/", "home/alice/x", "home/alice/deep/er/and/deeper", "home/alice/secret", "home/alice/shared",
	"Home/alice/x", "home//shared", "home/bob/shared", "home/bob/private/diary",
	"sensors/alice/kitchen/temp", "sensors/alice/kitchen/hum",
	"weather/paris/now", "weather/paris/tomorrow", "weather/alice/now", "news/alice/today",
	"alerts/carol", "alerts/fire",
	"data/alice/x", "data/alice/locked", "data/carol/locked", "data/dave/x", "data/a/b/x",
	"devices/dave/in/cmd", "devices/a/b/in/cmd", "devices/dave-dev/out", "devices/dave/x/out", "devices/alice-1/out",
	"devices/cd-1/out", "c/x", "app/status/bob", "other/x",
	"$app/status/alice", "$app/cmd",
	"$SYS/broker/version",
}

// diffFilters are the wildcard and shared filters every row subscribes
// to besides diffTopics.
var diffFilters = []string{
	"#", "+/+", "home/+/shared", "home/alice/#", "sensors/+/+/temp", "$SYS/#", "$app/#", "$share/g/home/bob/#",
}

// The kinds of access a cell asks about.
const (
	diffConnect5   = "CONNECT v5"
	diffConnect311 = "CONNECT 3.1.1"
	diffSubscribe  = "SUBACK"
	diffPublish    = "PUBLISH"
	diffRead       = "READ"
)

type diffCell struct{ id, kind, topic string }

// diffExpected are the cells where the plugin and mosquitto's own files
// must differ, by design: each is the Guard refusing what mosquitto 2.0
// allows, for a documented security reason. Nothing else may differ.
var diffExpected = []struct {
	cell   diffCell
	a, b   string // mosquitto's files, the plugin
	reason string
}{
	// acl.ParseMosquitto (acl/mosquitto.go): a placeholder matches only
	// an identity free of '/', '+' and '#'. mosquitto 2.0 refuses only
	// '+' and '#' and substitutes the string, so user "a/b" gets user
	// "a"'s subtree through "pattern readwrite data/%u/#", and client
	// "dave/x" writes "devices/dave/x/out" through "pattern write
	// devices/%c/out", a topic of two levels where %c is one.
	{diffCell{"ab-1", diffPublish, "data/a/b/x"}, "accepted", "0x87", "'/' in %u: user a/b inside user a's data/a/#"},
	{diffCell{"ab-1", diffRead, "data/a/b/x"}, "received", "not received", "'/' in %u: user a/b inside user a's data/a/#"},
	{diffCell{"ab-1", diffRead, "devices/a/b/in/cmd"}, "received", "not received", "'/' in %u: user a/b inside user a's devices/a/in/#"},
	{diffCell{"dave/x", diffPublish, "devices/dave/x/out"}, "accepted", "0x87", "'/' in %c: client ID dave/x spans two levels of devices/%c/out"},

	// subscribe_check = "delivery" checks no SUBSCRIBE, as mosquitto's
	// acl_file does not, except a shared one (mqttguard subscribe.go):
	// one member of a group gets each message, and mosquitto drops a
	// message its member may not read, so a member that may not read
	// the whole filter would swallow a share of the group's messages.
	// Joining needs a read rule covering the filter and no deny
	// intersecting it. admin (readwrite #) and carol (read #) may join;
	// bob's "topic home/bob/#" covers it but his deny
	// home/bob/private/# intersects it; the others have no rule
	// covering it.
	{diffCell{"alice-1", diffSubscribe, "$share/g/home/bob/#"}, "0x00", "0x87", "shared subscription without a covering read rule"},
	{diffCell{"bob-1", diffSubscribe, "$share/g/home/bob/#"}, "0x00", "0x87", "shared subscription intersecting a deny"},
	{diffCell{"dave-dev", diffSubscribe, "$share/g/home/bob/#"}, "0x00", "0x87", "shared subscription without a covering read rule"},
	{diffCell{"dave+1", diffSubscribe, "$share/g/home/bob/#"}, "0x00", "0x87", "shared subscription without a covering read rule"},
	{diffCell{"dave/x", diffSubscribe, "$share/g/home/bob/#"}, "0x00", "0x87", "shared subscription without a covering read rule"},
	{diffCell{"ab-1", diffSubscribe, "$share/g/home/bob/#"}, "0x00", "0x87", "shared subscription without a covering read rule"},
	{diffCell{"cd-1", diffSubscribe, "$share/g/home/bob/#"}, "0x00", "0x87", "shared subscription without a covering read rule"},
}

// The same acl_file, password file and policy decide the same way in the
// plugin as in mosquitto's own acl_file and password_file.
func TestSameDecisionsAsMosquittoFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a c-shared plugin and runs two mosquittos: not with -short")
	}
	bin := testenv.Program(t, "mosquitto", "mosquitto")
	so := buildPlugin(t)
	start := time.Now()

	files := t.TempDir()
	aclPath := filepath.Join(files, "acl")
	require.NoError(t, os.WriteFile(aclPath, []byte(diffACL), 0o600))
	pw := passwd.New()
	pw.Iterations = 101 // mosquitto_passwd 2.0's: both brokers hash on every CONNECT
	for u, p := range diffUsers {
		require.NoError(t, pw.Add(u, p))
	}
	pwPath := filepath.Join(files, "passwd")
	require.NoError(t, pw.WriteFile(pwPath))

	// B's configuration: the same two files, and only they decide. The
	// Guard's abuse layer has no counterpart in mosquitto's files and
	// would refuse cells for its own reasons, so:
	//   - mode "observe": the trust states, shadow bans, flapping and
	//     automatic bans are recorded, not enforced; passwords and the
	//     ACL are enforced in every mode. The grid's refused publishes
	//     are ACL violations: 4 counted in a minute throttle a client ID
	//     (which a plugin that cannot delay answers 0x97), 6 disable its
	//     writes. "full" passes today only because the tracker counts
	//     one violation per 100 ms (trust.Config.Spacing) and a row's
	//     refusals take a few milliseconds: on a loaded machine they
	//     would not;
	//   - every rate limit 0 (none), trust factors 0, flapping and the
	//     auth gate loosened beyond the grid (the gate would space out a
	//     failing address's attempts — three rows fail on purpose — and
	//     sleep on mosquitto's thread), no device profiles, no ban or
	//     trust file, no admin API;
	//   - subscribe_check = "delivery": a SUBSCRIBE is not checked, every
	//     delivery is, as mosquitto's acl_file does (it answers every
	//     SUBSCRIBE with success and checks MOSQ_ACL_READ per message);
	//     "covers" would refuse SUBSCRIBEs mosquitto grants.
	guardDir := t.TempDir()
	conf := fmt.Sprintf(`[mqtt]
enable_tls = false

[security]
mode = "observe"
enable_shadow_ban = false
enable_ip_ban = false
allow_anonymous = false
password_file = %q
acl_file = %q
ban_file = ""
trust_file = ""
subscribe_check = "delivery"

[security.auth_failures]
free = 1000
ban_after = 100000

[security.rate_limit]
user_tokens_per_second = 0.0
channel_messages_per_second = 0.0
ip_connections_per_second = 0.0
client_messages_per_second = 0.0
client_bytes_per_second = 0.0
total_messages_per_second = 0.0

[security.trust]
username_factor = 0.0
ip_factor = 0.0

[security.flapping]
max_connects = 1000000

[admin]
listen = ""
`, pwPath, aclPath)
	confPath := filepath.Join(guardDir, "mqttguard.toml")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))

	a := mqtttest.RunMosquitto(t, bin, t.TempDir(), "allow_anonymous false", "password_file "+pwPath, "acl_file "+aclPath)
	// allow_anonymous true lets anonymous CONNECTs reach the plugin,
	// which refuses them by the Guard's own allow_anonymous = false (as
	// in TestInsideMosquitto): the Guard decides every CONNECT.
	b := mqtttest.RunMosquitto(t, bin, guardDir, "allow_anonymous true", "plugin "+so, "plugin_opt_config "+confPath)

	resA := diffRun(t, "mosquitto", a.Addr)
	resB := diffRun(t, "plugin", b.Addr)

	// Compare, cell by cell, in the grid's order.
	expected := map[diffCell]int{}
	for i, e := range diffExpected {
		expected[e.cell] = i
	}
	var mismatches, notAsDocumented []string
	agree, differ := 0, 0
	for _, cell := range resA.order {
		ra, rb := resA.cells[cell], resB.cells[cell]
		if i, ok := expected[cell]; ok {
			e := diffExpected[i]
			if ra != e.a || rb != e.b {
				notAsDocumented = append(notAsDocumented, fmt.Sprintf("  %s %s %q: mosquitto %s, plugin %s; expected mosquitto %s, plugin %s (%s)",
					resA.rowOf[cell.id], cell.kind, cell.topic, ra, rb, e.a, e.b, e.reason))
			} else {
				differ++
			}
			continue
		}
		if ra == rb {
			agree++
			continue
		}
		mismatches = append(mismatches, fmt.Sprintf("  %s %s %q: mosquitto %s, plugin %s", resA.rowOf[cell.id], cell.kind, cell.topic, ra, rb))
	}
	for _, cell := range resB.order {
		if _, ok := resA.cells[cell]; !ok {
			mismatches = append(mismatches, fmt.Sprintf("  %s %s %q: mosquitto did not get there, plugin %s", resB.rowOf[cell.id], cell.kind, cell.topic, resB.cells[cell]))
		}
	}
	for _, e := range diffExpected {
		if _, ok := resA.cells[e.cell]; !ok {
			notAsDocumented = append(notAsDocumented, fmt.Sprintf("  expected difference %v was not asked", e.cell))
		}
	}
	if len(mismatches) > 0 {
		t.Errorf("%d of %d cells decide differently in the plugin than in mosquitto's acl_file/password_file:\n%s",
			len(mismatches), len(resA.order), strings.Join(mismatches, "\n"))
	}
	if len(notAsDocumented) > 0 {
		t.Errorf("the documented differences did not show as described:\n%s", strings.Join(notAsDocumented, "\n"))
	}
	for _, err := range append(resA.errs, resB.errs...) {
		t.Error(err)
	}

	// The grid must exercise both answers of PUBLISH, READ and CONNECT.
	count := func(kind, result string) int {
		n := 0
		for _, c := range resA.order {
			if c.kind == kind && resA.cells[c] == result {
				n++
			}
		}
		return n
	}
	require.Positive(t, count(diffPublish, "accepted"))
	require.Positive(t, count(diffPublish, "0x87"))
	require.Positive(t, count(diffRead, "received"))
	require.Positive(t, count(diffRead, "not received"))
	require.Positive(t, count(diffConnect5, "0x00"))
	require.Positive(t, count(diffConnect5, "0x87"))
	t.Logf("%d cells (%d rows × %d topics and %d more filters): %d agree, %d differ as documented; publishes accepted/refused %d/%d, reads %d/%d; %v without the build",
		len(resA.order), len(diffRows), len(diffTopics), len(diffFilters), agree, differ,
		count(diffPublish, "accepted"), count(diffPublish, "0x87"), count(diffRead, "received"), count(diffRead, "not received"),
		time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.Logf("mosquitto with the files:\n%s\nmosquitto with the plugin:\n%s", a.Log(), b.Log())
	}
}

// diffResults are one broker's answers.
type diffResults struct {
	cells map[diffCell]string
	order []diffCell
	rowOf map[string]string // client ID → the row as the failure message shows it
	errs  []error           // what went wrong outside the cells
}

func (r *diffResults) set(c diffCell, result string) {
	if _, ok := r.cells[c]; !ok {
		r.order = append(r.order, c)
	}
	r.cells[c] = result
}

// diffRun asks every cell of the grid of the broker at addr.
func diffRun(t *testing.T, name, addr string) *diffResults {
	t.Helper()
	res := &diffResults{cells: map[diffCell]string{}, rowOf: map[string]string{}}

	// The writer publishes every topic for the READ cells: the admin, who
	// may write everything but $SYS (which no client may write).
	writer := diffDial(t, addr)
	if code := writer.connect5("writer", "admin", diffUsers["admin"], true, true); code != "0x00" {
		t.Fatalf("%s: the admin's CONNECT: %s", name, code)
	}

	filters := append(slices.Clone(diffTopics), diffFilters...)
	for _, row := range diffRows {
		desc := fmt.Sprintf("user %q client %q", row.user, row.id)
		if !row.hasUser {
			desc = fmt.Sprintf("no username, client %q", row.id)
		}
		if row.note != "" {
			desc += " (" + row.note + ")"
		}
		res.rowOf[row.id] = desc

		c3 := diffDial(t, addr)
		res.set(diffCell{row.id, diffConnect311, ""}, c3.connect311(row.id, row.user, row.pass, row.hasUser, row.hasPass))
		c3.close()

		c := diffDial(t, addr)
		code := c.connect5(row.id, row.user, row.pass, row.hasUser, row.hasPass)
		res.set(diffCell{row.id, diffConnect5, ""}, code)
		if code != "0x00" {
			c.close()
			continue
		}

		// PUBLISH before subscribing: the row's own publishes come back
		// to nobody.
		for _, topic := range diffTopics {
			res.set(diffCell{row.id, diffPublish, topic}, c.publish(topic))
		}

		codes := c.subscribe(filters)
		for i, f := range filters {
			res.set(diffCell{row.id, diffSubscribe, f}, codes[i])
		}
		c.sync() // retained messages ($SYS/broker/version) come now
		for _, topic := range diffTopics {
			if strings.HasPrefix(topic, "$SYS/") {
				continue
			}
			if r := writer.publish(topic); r != "accepted" {
				res.errs = append(res.errs, fmt.Errorf("%s: the admin's publish to %q (for %s's READ cells): %s", name, topic, row.id, r))
			}
		}
		// The deliveries of every publish the writer has had
		// acknowledged are queued for c before its PINGRESP.
		c.sync()
		for _, topic := range diffTopics {
			r := "not received"
			switch {
			case c.err != nil:
				r = "connection lost: " + c.err.Error()
			case slices.Contains(c.got, topic):
				r = "received"
			}
			res.set(diffCell{row.id, diffRead, topic}, r)
		}
		c.close()
	}
	if writer.err != nil {
		res.errs = append(res.errs, fmt.Errorf("%s: the writer's connection: %v", name, writer.err))
	}
	writer.close()
	return res
}

// diffConn is an MQTT 5 client for the grid that never fails the test:
// an error (the broker closed the connection, a deadline passed) becomes
// the answer of the cell and of every cell after it on the connection.
// It subscribes at QoS 0 only, so deliveries need no acknowledgement;
// it records the topic of every PUBLISH it reads.
type diffConn struct {
	c      net.Conn
	r      *bufio.Reader
	err    error
	nextID uint16
	got    []string
}

func diffDial(t *testing.T, addr string) *diffConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // no cell can hang
	return &diffConn{c: c, r: bufio.NewReader(c)}
}

func (d *diffConn) close() { d.c.Close() }

func (d *diffConn) failed() string { return "connection lost: " + d.err.Error() }

func (d *diffConn) id() uint16 {
	d.nextID++
	if d.nextID == 0 {
		d.nextID = 1
	}
	return d.nextID
}

func (d *diffConn) send(cp *paho.ControlPacket) bool {
	if d.err != nil {
		return false
	}
	_, d.err = cp.WriteTo(d.c)
	return d.err == nil
}

// read returns the next packet that is not a PUBLISH, or nil after an
// error.
func (d *diffConn) read() *paho.ControlPacket {
	for d.err == nil {
		cp, err := paho.ReadPacket(d.r)
		if err != nil {
			d.err = err
			return nil
		}
		if p, ok := cp.Content.(*paho.Publish); ok {
			d.got = append(d.got, p.Topic)
			continue
		}
		return cp
	}
	return nil
}

// connect5 returns the CONNACK's reason code ("0x00": accepted).
func (d *diffConn) connect5(id, user, pass string, hasUser, hasPass bool) string {
	cp := paho.NewControlPacket(paho.CONNECT)
	cn := cp.Content.(*paho.Connect)
	cn.ProtocolName, cn.ProtocolVersion, cn.ClientID, cn.CleanStart, cn.KeepAlive = "MQTT", 5, id, true, 60
	cn.UsernameFlag, cn.Username, cn.PasswordFlag = hasUser, user, hasPass
	if hasPass {
		cn.Password = []byte(pass)
	}
	cn.Properties = &paho.Properties{}
	if !d.send(cp) {
		return d.failed()
	}
	ack := d.read()
	if ack == nil {
		return d.failed()
	}
	ca, ok := ack.Content.(*paho.Connack)
	if !ok {
		return fmt.Sprintf("not a CONNACK: %v", ack)
	}
	return fmt.Sprintf("0x%02x", ca.ReasonCode)
}

// connect311 returns the MQTT 3.1.1 CONNACK's return code ("0": accepted)
// and disconnects.
func (d *diffConn) connect311(id, user, pass string, hasUser, hasPass bool) string {
	pkt := packets.AppendConnect(nil, &packets.Connect{ProtocolName: []byte("MQTT"), Level: packets.V311, CleanStart: true,
		KeepAlive: 60, ClientID: []byte(id), UsernameFlag: hasUser, Username: []byte(user), PasswordFlag: hasPass, Password: []byte(pass)}, nil)
	if _, err := d.c.Write(pkt); err != nil {
		return "write: " + err.Error()
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(d.r, ack); err != nil {
		return "no CONNACK: " + err.Error()
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		return fmt.Sprintf("not a CONNACK: %x", ack)
	}
	if ack[3] == 0 {
		d.c.Write([]byte{0xe0, 0}) // DISCONNECT: the v5 CONNECT with this ID comes next
	}
	return fmt.Sprint(ack[3])
}

// subscribe sends one SUBSCRIBE for all filters at QoS 0 and returns the
// SUBACK's reason code for each.
func (d *diffConn) subscribe(filters []string) []string {
	out := make([]string, len(filters))
	cp := paho.NewControlPacket(paho.SUBSCRIBE)
	s := cp.Content.(*paho.Subscribe)
	s.PacketID, s.Properties = d.id(), &paho.Properties{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubOptions{Topic: f, QoS: 0})
	}
	var ack *paho.ControlPacket
	if d.send(cp) {
		ack = d.read()
	}
	if ack == nil {
		for i := range out {
			out[i] = d.failed()
		}
		return out
	}
	sa, ok := ack.Content.(*paho.Suback)
	for i := range out {
		if !ok || len(sa.Reasons) != len(filters) {
			out[i] = fmt.Sprintf("not a SUBACK for %d filters: %v", len(filters), ack)
		} else {
			out[i] = fmt.Sprintf("0x%02x", sa.Reasons[i])
		}
	}
	return out
}

// publish publishes at QoS 1 and returns "accepted" for PUBACK 0x00 and
// 0x10 (no matching subscribers: accepted, whoever happens to listen),
// the reason code otherwise.
func (d *diffConn) publish(topic string) string {
	cp := paho.NewControlPacket(paho.PUBLISH)
	p := cp.Content.(*paho.Publish)
	id := d.id()
	p.Topic, p.QoS, p.PacketID, p.Payload, p.Properties = topic, 1, id, []byte("21.5"), &paho.Properties{}
	if !d.send(cp) {
		return d.failed()
	}
	ack := d.read()
	if ack == nil {
		return d.failed()
	}
	pa, ok := ack.Content.(*paho.Puback)
	switch {
	case !ok || pa.PacketID != id:
		return fmt.Sprintf("not the PUBACK for %d: %v", id, ack)
	case pa.ReasonCode == 0x00 || pa.ReasonCode == 0x10:
		return "accepted"
	}
	return fmt.Sprintf("0x%02x", pa.ReasonCode)
}

// sync sends PINGREQ and reads up to the PINGRESP: every PUBLISH the
// broker queued for the client before it read the PINGREQ comes first.
func (d *diffConn) sync() {
	if !d.send(paho.NewControlPacket(paho.PINGREQ)) {
		return
	}
	if ack := d.read(); ack != nil && ack.Type != paho.PINGRESP {
		d.err = fmt.Errorf("want PINGRESP, got %v", ack)
	}
}
