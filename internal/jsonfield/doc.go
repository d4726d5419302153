// Package jsonfield reads and decodes JSON documents that people write or
// that Nix writes for them: image descriptions, layer files, plans, closure
// graphs and .attrs.json. They are untrusted input, so
//
//   - ReadFile reads only a regular file, and at most a given number of
//     bytes: a FIFO, a device (/dev/zero) or a huge file is an error naming
//     the file, not a hang or an out-of-memory crash;
//   - Strict and Lenient report every error with the full path of the
//     value at fault, in the document's own terms
//     ("layers[3].paths[0].narSize: expected an integer from 0 to …, got
//     JSON string"), as an *Error.
package jsonfield
