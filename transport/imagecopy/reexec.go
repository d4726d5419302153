package imagecopy

import "go.podman.io/storage/pkg/reexec"

// Reexec runs the work of a re-executed copy of this binary and reports
// whether it did; main must then return at once. containers-storage:
// destinations (podman's local store) re-execute the running binary for
// some operations, so main calls this before anything else.
func Reexec() bool { return reexec.Init() }
