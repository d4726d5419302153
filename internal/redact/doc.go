// Package redact removes secrets from text that nixpush prints: the query
// string of every URL (upload sessions carry their state in ?_state=…,
// S3-backed registries answer with pre-signed URLs whose query is the
// signature) and the user information of URLs and image references
// (docker://user:password@host/…).
//
// The CLI applies it where text leaves the process: errors, progress notes
// and the --report file.
package redact
