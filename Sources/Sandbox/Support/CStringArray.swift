import Glibc

/// A NULL-terminated array of C strings that outlives the clone() call: the
/// child reads it after the fork, so it must be allocated before, in the parent.
package final class CStringArray {
    package private(set) var pointers: [UnsafeMutablePointer<CChar>?]

    package init(_ strings: [String]) {
        pointers = strings.map { strdup($0) }
        pointers.append(nil)
    }

    deinit {
        for p in pointers { free(p) }
    }

    /// Runs `body` with `char *const *` semantics.
    package func withUnsafeArgv<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> R) rethrows -> R {
        try pointers.withUnsafeBufferPointer { buffer in
            // `baseAddress` is non-nil: the array always holds the terminating nil.
            try body(buffer.baseAddress ?? UnsafePointer(bitPattern: 8).unsafelyUnwrapped)
        }
    }
}
