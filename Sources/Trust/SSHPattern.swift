/// OpenSSH's pattern lists (ssh_config(5), PATTERNS): comma-separated
/// patterns with `*` and `?`; a `!` pattern that matches rejects outright.
enum SSHPattern {
    static func matchesList(_ list: String, _ text: String) -> Bool {
        var matched = false
        for entry in list.split(separator: ",", omittingEmptySubsequences: true) {
            if entry.hasPrefix("!") {
                if matches(Array(entry.dropFirst().utf8), Array(text.utf8)) { return false }
            } else if matches(Array(entry.utf8), Array(text.utf8)) {
                matched = true
            }
        }
        return matched
    }

    /// Glob match, iterative with one backtrack point: linear in practice,
    /// never exponential on hostile patterns like `*a*a*a*b`.
    static func matches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                p += 1; t += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p; resume = t; p += 1
            } else if let s = star {
                p = s + 1; resume += 1; t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
