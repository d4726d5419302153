package remoteverify

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDiffJSON(t *testing.T) {
	for _, tc := range []struct {
		name, want, got string
		fields          []string
	}{
		{"equal", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, nil},
		{"nested field", `{"config":{"Env":["A=1","B=2"]}}`, `{"config":{"Env":["A=1","B=3"]}}`, []string{"config.Env[1]"}},
		{"array length", `{"config":{"Cmd":["a"]}}`, `{"config":{"Cmd":["a","b"]}}`, []string{"config.Cmd"}},
		{"absent and extra, sorted", `{"b":1,"c":2}`, `{"a":0,"c":2}`, []string{"a", "b"}},
		{"type change", `{"created":"x"}`, `{"created":1}`, []string{"created"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w, g any
			if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.got), &g); err != nil {
				t.Fatal(err)
			}
			var fields []string
			diffJSON("", w, g, func(d Difference) { fields = append(fields, d.Field) })
			if !reflect.DeepEqual(fields, tc.fields) {
				t.Errorf("fields %v, want %v", fields, tc.fields)
			}
		})
	}
}
