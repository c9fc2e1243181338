/// The one rule for names that become path components and ref names: task ids
/// (`tasks/queue/<id>.json`, `refs/dgrid/claims/<id>`) and node ids
/// (`nodes/<id>.json`, `<node>-<id>.json`).
enum TaskIdentifier {
    /// 1…maxBytes bytes of `[A-Za-z0-9._-]`, not starting with '.' or '-', no "..".
    /// Also not ending in '.' or ".lock": Git refuses such ref names, so a task
    /// named that way could never be claimed and would sit in the queue forever.
    static func isValid(_ id: String, maxBytes: Int) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...maxBytes).contains(bytes.count) else { return false }
        guard bytes[0] != UInt8(ascii: "."), bytes[0] != UInt8(ascii: "-") else { return false }
        guard bytes.allSatisfy(isAllowed) else { return false }
        guard !id.contains(".."), !id.hasSuffix("."), !id.hasSuffix(".lock") else { return false }
        return true
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    static let rule = "1-128 characters of A-Z a-z 0-9 . _ -, not starting with . or -, without .., not ending in . or .lock"
}
