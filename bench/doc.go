// Package bench holds nixpush's benchmarks; bench/run runs them all.
package bench
