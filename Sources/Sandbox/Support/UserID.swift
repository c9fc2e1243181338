/// A numeric uid:gid. Names are never resolved: that would read the image's
/// /etc/passwd through the host's NSS (Docker CVE-2019-14271).
public struct UserID: Sendable, Hashable, CustomStringConvertible {
    public let uid: UInt32
    public let gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }

    public init(parsing text: String) throws(ValueError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
              let uid = UInt32(parts[0]), uid != UInt32.max,
              let gid = parts.count == 2 ? UInt32(parts[1]) : uid, gid != UInt32.max else {
            throw ValueError(kind: "user", text: text, hint: "use numeric UID[:GID], e.g. 1000:1000 (names are not resolved)")
        }
        self.init(uid: uid, gid: gid)
    }

    public var description: String { "\(uid):\(gid)" }
}
