package guardconf

import (
	"fmt"
	"reflect"
	"strings"
)

// Change is one setting whose value differs between the configuration
// in force and the file as it is now.
type Change struct {
	Key      string // "mqtt.port", "security.rate_limit.user_burst_capacity"
	Old, New string // as the file spells them; "" for a secret
	// Applied is true when the reload put the new value in force; false
	// when it takes a restart.
	Applied bool
}

func (c Change) String() string {
	s := c.Key + " changed"
	if c.Old != "" || c.New != "" {
		s += " from " + c.Old + " to " + c.New
	}
	if !c.Applied {
		s += ": restart to apply"
	}
	return s
}

// Diff lists the settings whose values differ between a and b, by the
// key a file spells them with, the Extension's included (when both have
// one of the same type). Tables and arrays of tables (devices, plugins)
// are one setting each; the values of fields tagged secret:"true" (a
// password, a URL that may hold one) are not shown.
func Diff(a, b *Config) []Change {
	var out []Change
	var walk func(prefix string, x, y reflect.Value)
	walk = func(prefix string, x, y reflect.Value) {
		t := x.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			xv, yv := x.Field(i), y.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Duration" {
				walk(key, xv, yv)
				continue
			}
			if reflect.DeepEqual(xv.Interface(), yv.Interface()) {
				continue
			}
			c := Change{Key: key}
			switch {
			case f.Tag.Get("secret") == "true":
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				c.Old, c.New = fmt.Sprintf("%d entries", xv.Len()), fmt.Sprintf("%d entries", yv.Len())
			default:
				c.Old, c.New = show(xv.Interface()), show(yv.Interface())
			}
			out = append(out, c)
		}
	}
	walk("", reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
	if a.Extension != nil && b.Extension != nil {
		x, y := reflect.ValueOf(a.Extension), reflect.ValueOf(b.Extension)
		if x.Type() == y.Type() && x.Kind() == reflect.Pointer && x.Elem().Kind() == reflect.Struct {
			walk("", x.Elem(), y.Elem())
		}
	}
	return out
}

// show prints a value as a configuration file spells it.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case nil:
		return "(unset)"
	}
	return fmt.Sprint(v)
}
