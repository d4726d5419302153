// Package loopback tells whether a registry host is this machine, the one
// place credentials may go without TLS verification unless the user names
// another host.
package loopback
