package passwd_test

import (
	"fmt"
	"strings"

	"github.com/mqttguard/mqttguard/passwd"
)

func ExampleParseMosquitto() {
	// A line as mosquitto_passwd 2.0 writes it (password "secret").
	f, err := passwd.ParseMosquitto(strings.NewReader(
		"alice:$7$101$0GphZkr2qALPjJea$l4hdqI02k6hLqBjH8cq0Hjua/g+j5mwxTc2l/YjVbuSvdc4OCAM6MXCJ+TyKd0LA/PoL6A5TrSev/479dP/lfA==\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Verify("alice", "secret"), f.Verify("alice", "guess"), f.Verify("mallory", "secret"))
	// Output:
	// true false false
}

func ExampleFile_Add() {
	f := passwd.New()   // like mosquitto_passwd -c
	f.Iterations = 1000 // the default, 210,000, is what you want in production
	if err := f.Add("sensor-1", "s3cret"); err != nil {
		fmt.Println(err)
		return
	}
	var file strings.Builder
	f.Write(&file) // "username:$7$<iterations>$<salt>$<hash>" lines, readable by mosquitto
	fmt.Println(strings.HasPrefix(file.String(), "sensor-1:$7$1000$"), f.Verify("sensor-1", "s3cret"))
	// Output:
	// true true
}

func ExampleConvertPlaintext() {
	// like mosquitto_passwd -U
	f, err := passwd.ConvertPlaintext(strings.NewReader("t1:alpha\nt2:beta\n"), 1000)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Users(), f.Verify("t2", "beta"))
	// Output:
	// [t1 t2] true
}

func ExampleParseMosquitto_error() {
	_, err := passwd.ParseMosquitto(strings.NewReader("alice:\n"))
	fmt.Println(err)
	// Output:
	// password file:1: user "alice": no password hash: mosquitto would accept any password for this user; set one with mosquitto_passwd or File.Add
}
