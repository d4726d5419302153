// Command peakrss runs a command and writes the command's peak resident
// memory, in KiB, to a file:
//
//	peakrss FILE COMMAND [ARG...]
//
// The benchmarks measure nixpush's memory through it (bench's
// runNixpush): the kernel counts the memory of the process that starts a
// command as part of the command's peak (a child shares its parent's
// memory map until it execs, and the map's high-water mark becomes the
// child's), so the starter must be small. This one's is about 2 MiB. It
// exits with the command's exit code.
package main
