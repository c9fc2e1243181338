import Glibc
import SandboxSupport

/// Why an image operation (store, import, index, allowlist, resolve, gc) failed.
/// Each description is one line saying what, on which digest or path, and what
/// to do next; the CLI prints it after `dgrid: `. Layer unpacking has its own
/// `UnpackError`, carried here as `.unpack`.
public enum ImageError: Error, Equatable, CustomStringConvertible {
    // MARK: content store
    /// The content hashed to another digest than the one it was fetched or named by.
    case digestMismatch(expected: Digest, actual: Digest)
    /// More bytes arrived than the descriptor's size.
    case tooLong(digest: Digest, expectedSize: Int64)
    /// The stream ended before the descriptor's size.
    case truncated(digest: Digest, expectedSize: Int64, received: Int64)
    /// A descriptor's size disagrees with the stored blob's.
    case sizeMismatch(digest: Digest, expectedSize: Int64, actualSize: Int64)
    case blobMissing(Digest)
    /// A JSON blob (manifest, config, index) larger than dgrid reads into memory.
    case blobTooLarge(digest: Digest?, what: String, size: Int64, limit: Int64)
    /// A host-side call failed.
    case system(operation: String, path: String, errno: Int32)
    /// The state directory (or one of dgrid's directories in it) is refused or cannot be made.
    case stateDirectory(StateDirectoryError)
    /// The source of a blob failed while it was read (network, archive).
    case readFailed(digest: Digest?, source: String, message: String)

    // MARK: documents
    /// A manifest, index, config or layout file that is not valid; `what` names it.
    case invalidDocument(what: String, reason: String)
    case invalidDigest(DigestError)
    case invalidReference(text: String, reason: String)
    case noMatchingPlatform(index: Digest, wanted: String, available: [String])

    // MARK: import
    case importSource(path: String, reason: String)
    case unpack(UnpackError)

    // MARK: local index, allowlist, run
    case unknownImage(String)
    case notAllowlisted(String)
    case notPinned(String)
    case pinnedToOtherDigest(name: String, pinned: Digest, requested: Digest)
    case notInStore(reference: String, digest: Digest)
    case layerNotUnpacked(diffID: Digest, path: String)
    case invalidConfig(image: Digest, field: String, value: String, reason: String)
    case busy(what: String)
    /// gc stopped before removing anything.
    case gcAborted(reason: String)
    case scan(command: String, reason: String)
    /// The rootless layer helper (LayerNamespaceHelper) could not do `what`.
    case layerHelper(what: String, reason: String)

    public var description: String {
        switch self {
        case .digestMismatch(let expected, let actual):
            return "blob \(expected): content hashes to \(actual); refused"
        case .tooLong(let digest, let size):
            return "blob \(digest): more than the declared \(size) bytes; refused"
        case .truncated(let digest, let size, let received):
            return "blob \(digest): truncated: got \(received) of the declared \(size) bytes; refused"
        case .sizeMismatch(let digest, let expected, let actual):
            return "blob \(digest): descriptor says \(expected) bytes but the blob has \(actual); refused"
        case .blobMissing(let digest):
            return "blob \(digest) is not in the content store"
        case .blobTooLarge(let digest, let what, let size, let limit):
            return "\(what)\(digest.map { " \($0)" } ?? ""): \(size) bytes, more than the \(limit) dgrid reads; refused"
        case .system(let operation, let path, let errno):
            return "\(operation) \(path): \(errnoText(errno))"
        case .stateDirectory(let error):
            return error.description
        case .readFailed(let digest, let source, let message):
            return "reading \(digest.map { "blob \($0) from " } ?? "")\(source): \(message)"
        case .invalidDocument(let what, let reason):
            return "\(what): \(reason)"
        case .invalidDigest(let error):
            return error.description
        case .invalidReference(let text, let reason):
            return "invalid image reference '\(UntrustedText.shown(text))': \(reason)"
        case .noMatchingPlatform(let index, let wanted, let available):
            let list = available.isEmpty ? "none" : available.joined(separator: ", ")
            return "image index \(index) has no \(wanted) manifest (available: \(list))"
        case .importSource(let path, let reason):
            return "cannot import \(path): \(reason)"
        case .unpack(let error):
            return error.description
        case .unknownImage(let reference):
            return "no local image '\(UntrustedText.shown(reference))'; import it first with `dgrid image import PATH --name \(UntrustedText.shown(reference))`"
        case .notAllowlisted(let reference):
            let shown = UntrustedText.shown(reference)
            return "image '\(shown)' is not on the allowlist; an admin can add it with `dgrid image allow \(shown)`"
        case .notPinned(let name):
            return "image '\(UntrustedText.shown(name))' is on the allowlist without a digest; an admin pins it with `dgrid image allow \(UntrustedText.shown(name))`"
        case .pinnedToOtherDigest(let name, let pinned, let requested):
            return "image '\(UntrustedText.shown(name))' is allowlisted at \(pinned), not \(requested)"
        case .notInStore(let reference, let digest):
            return "image '\(UntrustedText.shown(reference))' (\(digest)) is allowlisted but not in the local store; import it again"
        case .layerNotUnpacked(let diffID, let path):
            return "layer \(diffID) is not unpacked at \(path); import the image again"
        case .invalidConfig(let image, let field, let value, let reason):
            return "image \(image.short): config \(field) '\(UntrustedText.shown(value))': \(reason)"
        case .busy(let what):
            return what
        case .gcAborted(let reason):
            return "gc removed nothing: \(reason)"
        case .scan(let command, let reason):
            return "scan command '\(UntrustedText.shown(command))': \(reason)"
        case .layerHelper(let what, let reason):
            return "\(what) in a user namespace of your subordinate ids: \(reason); check /etc/subuid, /etc/subgid and newuidmap/newgidmap (uidmap), or unset them to unpack as yourself"
        }
    }
}

extension StateDirectory {
    /// `directory(_:)` for the image store, failing with the store's error type.
    func imageDirectory(_ relative: String) throws(ImageError) -> String {
        do {
            return try directory(relative)
        } catch {
            throw .stateDirectory(error)
        }
    }
}

extension Digest {
    /// `Digest(parsing:)` for the image store, failing with the store's error type.
    static func parsingReference(_ text: String) throws(ImageError) -> Digest {
        do {
            return try Digest(parsing: text)
        } catch {
            throw .invalidDigest(error)
        }
    }
}
