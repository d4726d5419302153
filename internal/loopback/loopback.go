package loopback

import (
	"net"
	"strings"
)

// Host says whether a registry host ("HOST[:PORT]") is this machine:
// localhost, 127.0.0.0/8 or ::1.
func Host(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
