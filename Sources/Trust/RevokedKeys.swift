/// Revoked public keys, one per line as `ssh-keygen` writes them (OpenSSH's
/// `RevokedKeys` list form): a signature by any of them, or by a certificate
/// they signed, is refused whatever `allowed_signers` says.
public struct RevokedKeys: Sendable {
    private let blobs: Set<[UInt8]>

    public init(_ keys: [SSHPublicKey] = []) { blobs = Set(keys.map(\.blob)) }

    public func contains(_ key: SSHPublicKey) -> Bool { blobs.contains(key.blob) }

    public var count: Int { blobs.count }

    public static func parse(_ text: String, source: String = "revoked_keys") throws(TrustFileError) -> RevokedKeys {
        var keys: [SSHPublicKey] = []
        for (number, line) in TrustFileLines.significant(text) {
            do {
                keys.append(try SSHPublicKey(line: String(line)))
            } catch {
                // A key dgrid cannot verify cannot sign anything it accepts either.
                if case .unsupportedAlgorithm = error { continue }
                if case .weakKey = error { continue }
                throw TrustFileError(file: source, line: number, problem: .syntax("\(error)"))
            }
        }
        return RevokedKeys(keys)
    }
}
