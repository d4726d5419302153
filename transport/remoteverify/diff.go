package remoteverify

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// maxValue is how much of a value a Difference shows.
const maxValue = 200

// diffJSON reports each place where the JSON values want and got
// (decoded into any) differ, by path: objects key by key (in sorted
// order), arrays of equal length element by element, anything else as a
// whole.
func diffJSON(path string, want, got any, add func(Difference)) {
	if reflect.DeepEqual(want, got) {
		return
	}
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		keys := make([]string, 0, len(wm)+len(gm))
		for k := range wm {
			keys = append(keys, k)
		}
		for k := range gm {
			if _, ok := wm[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			w, inW := wm[k]
			g, inG := gm[k]
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			switch {
			case !inW:
				add(Difference{Field: sub, Want: "(absent)", Got: show(g)})
			case !inG:
				add(Difference{Field: sub, Want: show(w), Got: "(absent)"})
			default:
				diffJSON(sub, w, g, add)
			}
		}
		return
	}
	wa, wok := want.([]any)
	ga, gok := got.([]any)
	if wok && gok && len(wa) == len(ga) {
		for i := range wa {
			diffJSON(fmt.Sprintf("%s[%d]", path, i), wa[i], ga[i], add)
		}
		return
	}
	add(Difference{Field: path, Want: show(want), Got: show(got)})
}

// show formats a JSON value, cut at maxValue bytes.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > maxValue {
		s = s[:maxValue] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
