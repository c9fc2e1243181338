import Glibc

/// The C library's text for an errno value, for error messages.
package func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
