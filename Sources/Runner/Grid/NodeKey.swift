import Foundation
import Sandbox
import Trust

/// This worker's own key (docs/ARCHITECTURE.md §11): Ed25519, in
/// `$DGRID_HOME/node/id_ed25519` (0600, directory 0700) beside its `.pub`.
/// Every claim, renewal, release, heartbeat and result the worker publishes
/// carries an SSH signature by it (namespace `dgrid-result`) in `<record>.sig`,
/// and its node record names the public key, so anyone can check with
/// `ssh-keygen -Y verify` who published what. Made in-process on first use
/// (`dgrid node init` makes it ahead, to register it with the grid's operators).
public struct NodeKey: Sendable {
    public static let directoryName = "node"
    public static let fileName = "id_ed25519"
    /// The SSHSIG namespace of every record a node signs.
    public static let namespace = "dgrid-result"
    /// Beside each signed record in its commit: `claim.json.sig`, `node.json.sig`, `result.json.sig`.
    public static let signatureSuffix = ".sig"

    public let path: String
    let signer: SSHSigner

    public var publicKey: SSHPublicKey { signer.publicKey }
    /// `ssh-ed25519 BASE64`, as a node record and an allowed_workers line carry it.
    public var publicLine: String { "ssh-ed25519 " + Data(publicKey.blob).base64EncodedString() }

    /// The armored signature of `record`'s exact bytes.
    public func sign(_ record: [UInt8]) -> [UInt8] { signer.sign(record, namespace: Self.namespace) }

    /// The key in `state`, made when missing. `created` says whether this call made it.
    public static func loadOrCreate(state: StateDirectory, nodeID: String) throws(GridError) -> (key: NodeKey, created: Bool) {
        if let key = try load(state: state) { return (key, false) }
        return (try create(state: state, nodeID: nodeID), true)
    }

    /// The key in `state`; nil when there is none yet.
    public static func load(state: StateDirectory) throws(GridError) -> NodeKey? {
        let directory: String?
        do {
            directory = try state.existingDirectory(directoryName)
        } catch {
            throw .local("\(state.path)/\(directoryName): \(error)")
        }
        guard let directory else { return nil }
        let path = directory + "/" + fileName
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw .local("\(path): cannot read it: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .local("\(path) is not a regular file (a symlink?): remove it and run `dgrid node init`") }
        guard info.st_uid == geteuid() else { throw .local("\(path) is owned by uid \(info.st_uid), not this user: a node key is the worker's own") }
        guard info.st_mode & 0o077 == 0 else {
            throw .local("\(path) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))): `chmod 600 \(path)`, or make a new one if others may have read it")
        }
        guard let bytes = FileManager.default.contents(atPath: path) else { throw .local("\(path): cannot read it") }
        do {
            return NodeKey(path: path, signer: try SSHSigner(privateKeyFile: Array(bytes)))
        } catch {
            throw .local("\(path) is not a usable node key (\(error)): move it away and run `dgrid node init`")
        }
    }

    /// Makes the key; refuses to replace one (a node's key is its identity on the grid).
    public static func create(state: StateDirectory, nodeID: String) throws(GridError) -> NodeKey {
        let directory: String
        do {
            directory = try state.directory(directoryName)
        } catch {
            throw .local("\(state.path)/\(directoryName): \(error)")
        }
        let path = directory + "/" + fileName
        let made = SSHSigner.generate(comment: "dgrid-node " + nodeID)
        // Written aside, then linked into place: link() fails on an existing name, so two
        // processes starting on one home at once end with one whole key, never half of one.
        let temporary = path + ".new-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .local("\(temporary): cannot create it: \(String(cString: strerror(errno)))") }
        defer { unlink(temporary) }
        let written = made.privateKeyFile.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == made.privateKeyFile.count, synced else { throw .local("\(path): cannot write it (disk full?)") }
        if link(temporary, path) != 0 {
            if errno == EEXIST, let existing = try load(state: state) { return existing }
            throw .local("\(path): cannot create it: \(String(cString: strerror(errno)))")
        }
        // The .pub is for people (to register the node); the private file is what counts.
        try? Data((made.publicLine + "\n").utf8).write(to: URL(fileURLWithPath: path + ".pub"), options: .atomic)
        guard let key = try load(state: state) else { throw .local("\(path): made, then gone") }
        return key
    }
}
