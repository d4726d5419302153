// Package meter holds what nixpush's progress views share: byte counts and
// rates for plain CI lines, and progressbar bars in a live region for
// terminals.
package meter
