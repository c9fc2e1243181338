import SandboxImages
import SandboxSupport
import Glibc

/// Pushes a task's files as one OCI artifact (`ArtifactManifest`) and reads
/// one back, verified (docs/ARCHITECTURE.md §10). What `dgrid-registry artifact
/// push|fetch|check` runs for the worker and for `dgrid result --download`.
///
/// A push: each file is hashed from its descriptor (read twice — once to hash,
/// once to send — never held in memory); a blob the repository already has
/// (HEAD, same size) is not sent again; the others go up by POST and one PUT
/// streamed from the file; then the empty config blob, then the manifest,
/// tagged `ArtifactTag.make(stem:manifest:)`.
public struct ArtifactPusher: Sendable {
    public let options: RegistryClient.Options

    public init(options: RegistryClient.Options) {
        self.options = options
    }

    /// What `progress` hears, one line each.
    public enum Step: Sendable {
        case hashed(title: String, digest: Digest, size: UInt64, milliseconds: Double)
        case present(Digest)
        case uploaded(Digest, size: UInt64, milliseconds: Double)
    }

    public func push(_ request: ArtifactPushRequest, progress: ((Step) -> Void)? = nil) throws(ArtifactHelperError) -> ArtifactPushReport {
        let repository: ArtifactRepository
        do {
            repository = try ArtifactRepository(parsing: request.repository)
        } catch {
            throw .request(error.description)
        }
        // Every file opened and hashed first: a bad source is refused before anything is sent.
        var sources: [(file: ArtifactPushRequest.File, fd: Int32, digest: Digest)] = []
        defer { for source in sources { close(source.fd) } }
        for file in request.files {
            let fd = try ArtifactSource.open(file)
            let started = Clock.monotonicMilliseconds()
            let digest: Digest
            do throws(ArtifactHelperError) {
                digest = try ArtifactSource.hash(fd, size: file.size, title: file.title)
            } catch {
                close(fd)
                throw error
            }
            sources.append((file, fd, digest))
            progress?(.hashed(title: file.title, digest: digest, size: file.size, milliseconds: Clock.monotonicMilliseconds() - started))
        }
        let client: RegistryClient
        do {
            client = try RegistryClient(repository: repository.description, options: options, access: .push)
        } catch {
            throw .registry(error)
        }
        defer { client.shutdown() }
        var uploaded: Set<Digest> = []
        var present: Set<Digest> = []
        do throws(RegistryError) {
            for source in sources where !uploaded.contains(source.digest) && !present.contains(source.digest) {
                if try client.blobSize(source.digest) == Int64(source.file.size) {
                    present.insert(source.digest)
                    progress?(.present(source.digest))
                    continue
                }
                let started = Clock.monotonicMilliseconds()
                try client.uploadBlob(.file(fd: source.fd, size: Int64(source.file.size)), digest: source.digest, size: Int64(source.file.size))
                uploaded.insert(source.digest)
                progress?(.uploaded(source.digest, size: source.file.size, milliseconds: Clock.monotonicMilliseconds() - started))
            }
            try ensureEmptyConfig(client)
        } catch {
            throw .registry(error)
        }
        let manifest = ArtifactManifest(
            layers: sources.map { .init(title: $0.file.title, digest: $0.digest, size: Int64($0.file.size), mediaType: $0.file.mediaType) },
            annotations: request.annotations)
        let bytes: [UInt8]
        do {
            bytes = try manifest.encoded()
        } catch {
            throw .request(error.description)
        }
        let digest = Digest(of: bytes)
        let tag = ArtifactTag.make(stem: request.tagStem, manifest: digest)
        do throws(RegistryError) {
            let answered = try client.putManifest(bytes, mediaType: OCIMediaType.ociManifest, reference: tag)
            if let answered, answered != digest.description {
                throw RegistryError.digestHeaderMismatch(host: repository.registry, reference: "\(repository):\(tag)", header: answered, computed: digest)
            }
        } catch {
            throw .registry(error)
        }
        return ArtifactPushReport(
            location: ArtifactManifestLocation(repository: repository, manifest: digest).description, manifest: digest,
            manifestSize: bytes.count, tag: tag,
            files: sources.map { .init(title: $0.file.title, digest: $0.digest, size: $0.file.size, mediaType: $0.file.mediaType,
                                       uploaded: uploaded.contains($0.digest)) })
    }

    /// The registry is there and takes this host's pushes to `repository`: the
    /// empty config blob is looked for and, when missing, uploaded (the worker's
    /// start check and its self-check after a failed push).
    public func check(_ repository: ArtifactRepository) throws(ArtifactHelperError) {
        do throws(RegistryError) {
            let client = try RegistryClient(repository: repository.description, options: options, access: .push)
            defer { client.shutdown() }
            try ensureEmptyConfig(client)
        } catch {
            throw .registry(error)
        }
    }

    /// Blob `digest` (`size` bytes) of `repository` into the file `fd`, verified as it arrives.
    public func fetch(_ repository: ArtifactRepository, digest: Digest, size: UInt64, into fd: Int32) throws(ArtifactHelperError) {
        do throws(RegistryError) {
            let client = try RegistryClient(repository: repository.description, options: options)
            defer { client.shutdown() }
            try client.fetchBlob(digest, size: Int64(size), into: fd)
        } catch {
            throw .registry(error)
        }
    }

    private func ensureEmptyConfig(_ client: RegistryClient) throws(RegistryError) {
        let empty = ArtifactManifest.emptyDescriptor
        if try client.blobSize(empty.digest) == empty.size { return }
        try client.uploadBlob(.bytes(ArtifactManifest.emptyBlob), digest: empty.digest, size: empty.size)
    }
}

/// Why a push, fetch or check failed; `exit` tells the caller which kind.
public enum ArtifactHelperError: Error, Equatable, CustomStringConvertible {
    /// The request itself is unusable (its JSON, the repository, a title).
    case request(String)
    /// A file to push cannot be read as asked (gone, not regular, another size).
    case source(title: String, reason: String)
    case registry(RegistryError)

    public var description: String {
        switch self {
        case .request(let reason): "artifact request: \(reason)"
        case .source(let title, let reason): "artifact \(UntrustedText.quoted(title, limit: 120)): \(reason)"
        case .registry(let error): error.description
        }
    }

    public var exit: ArtifactHelperExit {
        guard case .registry(let error) = self else { return .failed }
        switch error {
        case .http(_, _, 404, _):
            return .missing
        case .image(.digestMismatch), .image(.tooLong), .image(.truncated), .image(.sizeMismatch):
            return .corrupt
        default:
            return .failed
        }
    }
}
