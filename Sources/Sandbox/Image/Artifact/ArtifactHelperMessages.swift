import SandboxSupport

/// What the worker hands `dgrid-registry artifact push` (JSON on its stdin) and
/// what it prints back (docs/ARCHITECTURE.md §10, "the registry store"). The
/// worker has no HTTP stack, so it runs the helper; these two values are the
/// whole contract between them, defined once for both sides.
public struct ArtifactPushRequest: Codable, Sendable, Equatable {
    /// One file: the layer titled `title`. Read from an inherited descriptor:
    /// the file itself (`path` nil), or the directory `path` is opened beneath,
    /// one component at a time without following a link (a task's `/output`).
    public struct File: Codable, Sendable, Equatable {
        public var title: String
        public var mediaType: String
        public var fd: Int32
        public var path: String?
        /// What the worker saw; a file of another size is refused, not pushed.
        public var size: UInt64

        public init(title: String, mediaType: String, fd: Int32, path: String? = nil, size: UInt64) {
            self.title = title
            self.mediaType = mediaType
            self.fd = fd
            self.path = path
            self.size = size
        }

        enum CodingKeys: String, CodingKey {
            case title, fd, path, size
            case mediaType = "media_type"
        }
    }

    /// The manifest annotation naming the task the files came from.
    public static let taskAnnotation = "org.dgrid.task"

    public var repository: String
    /// The tag's stem (the task id): the tag is `<stem>_<12 hex of the manifest digest>` (`ArtifactTag`).
    public var tagStem: String
    public var files: [File]
    /// The manifest's own annotations (the task id).
    public var annotations: [String: String]

    public init(repository: String, tagStem: String, files: [File], annotations: [String: String] = [:]) {
        self.repository = repository
        self.tagStem = tagStem
        self.files = files
        self.annotations = annotations
    }

    enum CodingKeys: String, CodingKey {
        case repository, files, annotations
        case tagStem = "tag_stem"
    }
}

/// What a push made: the manifest (by digest), its tag, and each file's digest.
public struct ArtifactPushReport: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        public var title: String
        public var digest: Digest
        public var size: UInt64
        public var mediaType: String
        /// false: the registry had the blob already (HEAD), nothing was sent.
        public var uploaded: Bool

        public init(title: String, digest: Digest, size: UInt64, mediaType: String, uploaded: Bool) {
            self.title = title
            self.digest = digest
            self.size = size
            self.mediaType = mediaType
            self.uploaded = uploaded
        }

        enum CodingKeys: String, CodingKey {
            case title, digest, size, uploaded
            case mediaType = "media_type"
        }
    }

    /// `HOST/PATH@sha256:…`: what a result record's `location` holds.
    public var location: String
    public var manifest: Digest
    public var manifestSize: Int
    public var tag: String
    public var files: [File]

    public init(location: String, manifest: Digest, manifestSize: Int, tag: String, files: [File]) {
        self.location = location
        self.manifest = manifest
        self.manifestSize = manifestSize
        self.tag = tag
        self.files = files
    }

    enum CodingKeys: String, CodingKey {
        case location, manifest, tag, files
        case manifestSize = "manifest_size"
    }
}

/// How `dgrid-registry artifact fetch` and `check` end, so the caller can tell a
/// missing or corrupt artifact (the record's or the store's problem, one line)
/// from a registry it cannot reach (this host's).
public enum ArtifactHelperExit: Int32, Sendable {
    case ok = 0
    /// The registry, credentials, the network or the helper itself.
    case failed = 1
    /// The registry does not have the blob (or the repository).
    case missing = 4
    /// Bytes that do not match the digest or the size.
    case corrupt = 5
}

/// The tag of a task's artifact: `<task id>_<first 12 hex digits of the
/// manifest digest>` (at most 128 characters; a task id is already
/// `[A-Za-z0-9._-]`, never starting with `.` or `-`, so it fits the tag grammar
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` as it is). The digest makes each
/// distinct push its own tag: a second attempt of the task never moves the tag
/// of the manifest the published record names, so a registry's garbage
/// collection of untagged manifests cannot take it; the same content pushed
/// twice is the same tag. A stem that is no valid tag start is replaced by `task`.
public enum ArtifactTag {
    public static let maxLength = 128

    public static func make(stem: String, manifest: Digest) -> String {
        let suffix = "_" + manifest.hex.prefix(12)
        var clean = String(stem.unicodeScalars.map { scalar -> Character in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", ".", "-": Character(scalar)
            default: "_"
            }
        })
        if clean.first.map({ $0 == "." || $0 == "-" }) ?? true { clean = "task" + clean }
        return String(clean.prefix(maxLength - suffix.count)) + suffix
    }
}
