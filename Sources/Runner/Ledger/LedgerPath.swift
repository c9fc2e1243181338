/// Validation of paths written into ledger trees. Paths come from task ids and node
/// names, which a repository writer controls (docs/THREATS.md, attacker 3), and other
/// tools (D-GRID's dashboard, plain `git checkout`) read these trees, so a path must
/// be harmless to check out anywhere.
enum LedgerPath {
    /// Longest path accepted; git itself handles more, filesystems often do not.
    static let maxLength = 1024

    /// The problem with `path`, or nil when it is acceptable.
    static func problem(_ path: String) -> String? {
        if path.isEmpty { return "the path is empty" }
        if path.utf8.count > maxLength { return "the path is longer than \(maxLength) bytes" }
        if path.hasPrefix("/") { return "the path is absolute (starts with '/')" }
        if path.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            return "the path contains a NUL or control character"
        }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            if component.isEmpty { return "the path has an empty component ('//' or a trailing '/')" }
            if component == "." || component == ".." { return "the path has a '\(component)' component" }
            // A tree entry named .git is a repository inside the checkout of anyone who
            // clones the grid (the CVE-2014-9390 family); git refuses those on checkout.
            if component.lowercased() == ".git" { return "the path has a '.git' component" }
        }
        return nil
    }
}
