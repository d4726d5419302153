package meter

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Size formats n bytes with IEC units: "512 B", "1.5 MiB".
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Rate formats n bytes over d as a rate, "-" when d is not positive.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return Size(int64(float64(n)/d.Seconds())) + "/s"
}

// NewBar returns a bar of max bytes (-1: unknown, a spinner) labelled
// desc. It draws nothing itself: callers place bar.String() in their own
// live region, so several bars can share the terminal.
func NewBar(max int64, desc string) *progressbar.ProgressBar {
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(io.Discard),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(25),
		progressbar.OptionThrottle(0),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionShowCount(),
	)
	_ = bar.RenderBlank() // so String() has a line before the first byte
	return bar
}
