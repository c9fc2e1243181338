import Sandbox

/// One file a task left under `/output` (docs/ARCHITECTURE.md §10), as its result
/// record lists it: where it was, what it holds (sha256), and where it is kept.
public struct Artifact: Equatable, Sendable {
    /// Relative to `/output` (`CheckpointPath`'s rule: clean, relative).
    public var path: String
    public var size: UInt64
    public var digest: Digest
    public var mediaType: String
    public var store: ArtifactStoreKind
    /// Where the store keeps it: a path on main (`git`), a file (`directory`), the task's OCI
    /// artifact `HOST/PATH@sha256:<manifest>` (`registry`: the layer of this digest); empty for `none`.
    public var location: String

    func value() -> LedgerJSON.Value {
        .object(["path": .string(path), "size": .uint(size), "digest": .string(digest.description), "media_type": .string(mediaType),
                 "store": .string(store.rawValue), "location": .string(location)])
    }

    static func parse(_ value: LedgerJSON.Value) -> Artifact? {
        guard case .object(let members) = value else { return nil }
        let f = RecordFields(members: members)
        guard let path = f.string("path"), CheckpointPath.problem(path) == nil, let size = f.unsigned("size"),
              let digest = f.string("digest").flatMap({ try? Digest(parsing: $0) }),
              let store = f.string("store").flatMap(ArtifactStoreKind.init(rawValue:)) else { return nil }
        return Artifact(path: path, size: size, digest: digest, mediaType: f.string("media_type") ?? "application/octet-stream",
                        store: store, location: f.string("location") ?? "")
    }

    /// A media type from the name, for whoever downloads it; the bytes decide nothing.
    static func mediaType(of path: String) -> String {
        let lower = path.lowercased()
        for (suffix, type) in [(".json", "application/json"), (".txt", "text/plain"), (".log", "text/plain"), (".csv", "text/csv"),
                               (".html", "text/html"), (".png", "image/png"), (".jpg", "image/jpeg"), (".gz", "application/gzip"),
                               (".tar", "application/x-tar"), (".zip", "application/zip"), (".pdf", "application/pdf")]
        where lower.hasSuffix(suffix) {
            return type
        }
        return "application/octet-stream"
    }
}

/// Where an artifact lives (docs/ARCHITECTURE.md §10).
public enum ArtifactStoreKind: String, Sendable {
    /// A Git blob: in the result commit, then on main at `artifacts/sha256/<hex>`.
    case git
    /// A plain directory on the worker's host (`artifact_dir`), `sha256/<hex>` in it: one-host grids.
    case directory
    /// An OCI registry (`artifact_registry`): one OCI artifact per task, a layer per file.
    case registry
    /// Not kept: larger than Git takes and no other store configured.
    case none
}
