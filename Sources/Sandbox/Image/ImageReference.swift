import SandboxSupport
/// An image name as admins and tasks write it: `NAME[:TAG][@DIGEST]`, parsed
/// once. NAME is a Docker-style repository (lowercase path components joined
/// by `/`, each of `a-z0-9` with `.`, `_`, `-` separators inside, optionally
/// after a registry host such as `registry.example:5000`); TAG is
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. A reference without tag or digest
/// means tag `latest`. Names are local: nothing is added (no `docker.io/library/`).
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    public let repository: String
    public let tag: String?
    public let digest: Digest?

    public init(parsing text: String) throws(ImageError) {
        func refuse(_ reason: String) -> ImageError { .invalidReference(text: text, reason: reason) }
        guard !text.isEmpty else { throw refuse("empty") }
        guard text.utf8.count <= 512 else { throw refuse("longer than 512 bytes") }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            do {
                digest = try Digest(parsing: String(rest[rest.index(after: at)...]))
            } catch {
                throw refuse(error.description)
            }
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        if let tag, !Self.isValidTag(tag) {
            throw refuse("tag '\(UntrustedText.shown(tag, limit: 60))' must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -")
        }
        let repository = String(rest)
        guard repository.utf8.count <= 255 else { throw refuse("name longer than 255 bytes") }
        guard Self.isValidRepository(repository) else {
            throw refuse("name must be lowercase components of a-z 0-9 separated by '.', '_', '-' and joined by '/', optionally after a registry host")
        }
        self.repository = repository
        self.tag = tag ?? (digest == nil ? "latest" : nil)
        self.digest = digest
    }

    /// `repository:tag` — the key the local index and the allowlist use. A
    /// reference given only by digest gets tag `latest` here.
    public var name: String {
        "\(repository):\(tag ?? "latest")"
    }

    public var description: String {
        var text = repository
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }

    static func isValidTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard (1...128).contains(bytes.count), bytes[0] != UInt8(ascii: "."), bytes[0] != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy { isAlnum($0, upper: true) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    static func isValidRepository(_ repository: String) -> Bool {
        var components = repository.split(separator: "/", omittingEmptySubsequences: false)
        guard !components.isEmpty else { return false }
        // A first component with '.' or ':' or "localhost" is a registry host.
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" {
            guard isValidHost(first) else { return false }
            components.removeFirst()
        }
        return components.allSatisfy(isValidPathComponent)
    }

    static func isValidHost(_ host: Substring) -> Bool {
        let parts = host.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let name = parts.first, !name.isEmpty else { return false }
        if parts.count == 2 {
            guard let port = UInt16(parts[1]), port > 0 else { return false }
        }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            let bytes = Array(label.utf8)
            guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
            return bytes.allSatisfy { isAlnum($0, upper: true) || $0 == UInt8(ascii: "-") }
        }
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    private static func isValidPathComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlnum(first, upper: false), isAlnum(last, upper: false) else {
            return false
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if isAlnum(byte, upper: false) {
                index += 1
                continue
            }
            // A separator run: ".", "_", "__" or one or more "-".
            var end = index
            while end < bytes.count && !isAlnum(bytes[end], upper: false) { end += 1 }
            let run = bytes[index..<end]
            let ok = run.elementsEqual([UInt8(ascii: ".")]) || run.elementsEqual([UInt8(ascii: "_")])
                || run.elementsEqual([UInt8(ascii: "_"), UInt8(ascii: "_")]) || run.allSatisfy { $0 == UInt8(ascii: "-") }
            guard ok else { return false }
            index = end
        }
        return true
    }

    private static func isAlnum(_ byte: UInt8, upper: Bool) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || (upper && byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }
}
