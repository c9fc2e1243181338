/// The one rule for names that become path components and ref names: task ids
/// (`tasks/queue/<id>.json`, `refs/dgrid/claims/<id>`) and node ids
/// (`nodes/<id>.json`, `<node>-<id>.json`).
enum TaskIdentifier {
    /// 1…maxBytes bytes of `[A-Za-z0-9._-]`, not starting with '.' or '-', no "..".
    /// Also not ending in '.' or ".lock": Git refuses such ref names, so a task
    /// named that way could never be claimed and would sit in the queue forever.
    static func isValid(_ id: String, maxBytes: Int) -> Bool {
        var id = id
        return id.withUTF8 { isValid(bytes: UnsafeRawBufferPointer($0), maxBytes: maxBytes) }
    }

    /// `isValid` over the bytes of a name as a tree holds them (main's finished folders are read that way).
    static func isValid(bytes: UnsafeRawBufferPointer, maxBytes: Int) -> Bool {
        guard (1...maxBytes).contains(bytes.count) else { return false }
        guard bytes[0] != UInt8(ascii: "."), bytes[0] != UInt8(ascii: "-") else { return false }
        guard bytes.allSatisfy(isAllowed) else { return false }
        let dot = UInt8(ascii: ".")
        guard !zip(bytes, bytes.dropFirst()).contains(where: { $0 == dot && $1 == dot }) else { return false }
        guard bytes[bytes.count - 1] != dot else { return false }
        return !(bytes.count >= 5 && bytes.suffix(5).elementsEqual(".lock".utf8))
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

/// The rule for node ids. The ledger names a node's records
/// `<node>-<task>.json` (D-GRID's names), and task ids may hold '-' (`job-7`),
/// so a '-' in a node id would let one name read two ways: `w1-job-7.json` as
/// task `job-7` on `w1` and as task `7` on `w1-job`. Node ids therefore hold no
/// '-', and the first '-' of a name always ends the node id. Node ids are chosen
/// once per worker by an operator; task ids by every submitter, so the
/// restriction falls on the former.
public enum NodeIdentifier {
    public static let maxBytes = 64

    /// Why `id` cannot name a node, in one line saying what to use instead; nil when it can.
    public static func problem(_ id: String) -> String? {
        let shown = id.debugDescription
        guard TaskIdentifier.isValid(id, maxBytes: maxBytes) else {
            return "invalid node id \(shown): use 1-\(maxBytes) characters of A-Z a-z 0-9 . _ (no '-'), not starting with '.', without '..', not ending in '.' or '.lock'"
        }
        guard let dash = id.firstIndex(of: "-") else { return nil }
        let (head, tail) = (id[..<dash], id[id.index(after: dash)...])
        let suggestion = id.replacingOccurrences(of: "-", with: "_")
        return "invalid node id \(shown): a node id may not contain '-', because the grid names records <node>-<task>.json "
            + "and task ids may contain '-' (\(id)-7.json would read both as task 7 on node \(id) and as task \(tail)-7 on node \(head)); "
            + "use \(suggestion.debugDescription) instead"
    }

    public static func isValid(_ id: String) -> Bool {
        problem(id) == nil
    }
}
