import SandboxSupport
/// What the last scan of an allowlisted image said.
public struct ScanSummary: Codable, Sendable, Equatable {
    /// The scanner's exit status (128+N when killed by signal N).
    public var exitStatus: Int32
    /// The first non-empty line of its output (stdout and stderr share one
    /// pipe), control characters escaped.
    public var summary: String
    /// The command as given, with `{layout}` not yet replaced.
    public var command: String?

    public init(exitStatus: Int32, summary: String, command: String?) {
        self.exitStatus = exitStatus
        self.summary = summary
        self.command = command
    }

    enum CodingKeys: String, CodingKey {
        case exitStatus = "exit_status", summary, command
    }
}

/// One allowlisted image (docs/ARCHITECTURE.md §5). `digest` nil means listed but not yet
/// pinned: nothing can run it until an admin pins it with `dgrid image allow`.
public struct AllowlistEntry: Codable, Sendable, Equatable {
    /// `repository:tag`.
    public var name: String
    public var digest: Digest?
    public var addedAt: String?
    public var approvedBy: String?
    public var note: String?
    public var lastScanned: String?
    public var vulnerabilities: ScanSummary?

    public init(name: String, digest: Digest?, addedAt: String?, approvedBy: String?, note: String?,
                lastScanned: String? = nil, vulnerabilities: ScanSummary? = nil) {
        self.name = name
        self.digest = digest
        self.addedAt = addedAt
        self.approvedBy = approvedBy
        self.note = note
        self.lastScanned = lastScanned
        self.vulnerabilities = vulnerabilities
    }

    enum CodingKeys: String, CodingKey {
        case name, digest, note, vulnerabilities
        case addedAt = "added_at", approvedBy = "approved_by", lastScanned = "last_scanned"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        digest = try c.decodeIfPresent(Digest.self, forKey: .digest)
        addedAt = try c.decodeIfPresent(String.self, forKey: .addedAt)
        approvedBy = try c.decodeIfPresent(String.self, forKey: .approvedBy)
        note = try c.decodeIfPresent(String.self, forKey: .note)
        lastScanned = try c.decodeIfPresent(String.self, forKey: .lastScanned)
        // A hand-written file may say just a string.
        if let text = try? c.decodeIfPresent(String.self, forKey: .vulnerabilities) {
            vulnerabilities = ScanSummary(exitStatus: 0, summary: text, command: nil)
        } else {
            vulnerabilities = try c.decodeIfPresent(ScanSummary.self, forKey: .vulnerabilities)
        }
    }

    /// Every key is always written; unknown values are `null`, as in the
    /// project's `images/allowlist.json`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(digest, forKey: .digest)
        try c.encode(addedAt, forKey: .addedAt)
        try c.encode(approvedBy, forKey: .approvedBy)
        try c.encode(note, forKey: .note)
        try c.encode(lastScanned, forKey: .lastScanned)
        try c.encode(vulnerabilities, forKey: .vulnerabilities)
    }
}

/// `$DGRID_HOME/images/allowlist.json`: `{ "images": [ AllowlistEntry ] }`.
/// A host without the file has an empty allowlist (the project's default,
/// `images/allowlist.json`, pins no digest, so it allows nothing to run
/// either); the first `allow` creates it. Updates are atomic and serialized
/// by an flock (`LockedFile`).
public final class Allowlist: Sendable {
    public let path: String
    private let file: LockedFile

    public init(state: StateDirectory) throws(ImageError) {
        let directory = try state.imageDirectory("images")
        path = directory + "/allowlist.json"
        file = LockedFile(path: path)
    }

    public var exists: Bool { FileIO.exists(path) }

    public func entries() throws(ImageError) -> [AllowlistEntry] {
        try decode(try file.read(what: "allowlist \(path)"))
    }

    /// The entry for `name` (`repository:tag`), if any.
    public func entry(named name: String) throws(ImageError) -> AllowlistEntry? {
        try entries().first { $0.name == name }
    }

    /// Adds or replaces the entry with `entry.name`. Returns the entry it replaced.
    @discardableResult
    public func put(_ entry: AllowlistEntry) throws(ImageError) -> AllowlistEntry? {
        try file.update(what: "allowlist \(path)") { (current) throws(ImageError) -> ([UInt8]?, AllowlistEntry?) in
            var entries = try decode(current)
            let previous = entries.first { $0.name == entry.name }
            if let index = entries.firstIndex(where: { $0.name == entry.name }) {
                entries[index] = entry
            } else {
                entries.append(entry)
            }
            return (try encode(entries), previous)
        }
    }

    /// Changes the entry named `name` in place, if it still exists.
    public func modify(name: String, _ change: (inout AllowlistEntry) -> Void) throws(ImageError) {
        try file.update(what: "allowlist \(path)") { (current) throws(ImageError) -> ([UInt8]?, Void) in
            var entries = try decode(current)
            guard let index = entries.firstIndex(where: { $0.name == name }) else { return (nil, ()) }
            change(&entries[index])
            return (try encode(entries), ())
        }
    }

    /// Removes entries whose name is `name`, or whose digest is `digest`.
    /// Returns what was removed.
    public func remove(name: String?, digest: Digest?) throws(ImageError) -> [AllowlistEntry] {
        try file.update(what: "allowlist \(path)") { (current) throws(ImageError) -> ([UInt8]?, [AllowlistEntry]) in
            var entries = try decode(current)
            let removed = entries.filter { ($0.name == name) || (digest != nil && $0.digest == digest) }
            guard !removed.isEmpty else { return (nil, []) }
            entries.removeAll { entry in removed.contains { $0.name == entry.name } }
            return (try encode(entries), removed)
        }
    }

    private struct File: Codable {
        var images: [AllowlistEntry]
    }

    private func decode(_ bytes: [UInt8]?) throws(ImageError) -> [AllowlistEntry] {
        guard let bytes else { return [] }
        return try JSONDocument.decode(File.self, from: bytes, what: "allowlist \(path)").images
    }

    private func encode(_ entries: [AllowlistEntry]) throws(ImageError) -> [UInt8] {
        try JSONDocument.encode(File(images: entries), pretty: true)
    }
}
