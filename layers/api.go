package layers

// Option configures how a layer is read from the store.
type Option func(*options)

type options struct {
	root string // host directory that stands for "/" when reading store paths
}

func makeOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithRoot reads store paths below dir instead of "/": /nix/store/x is read
// from dir/nix/store/x. Image paths are unchanged. Tests use it for fixture
// stores.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }
