import Sandbox

/// Whether an image can run on this worker, and if not, the command that
/// fixes it (docs/ARCHITECTURE.md §7, "Health"). The worker runs it for its
/// default image before it claims anything — a fresh host without that image
/// must say so, not fail every task that names none — and for an image a host
/// fault named, before it claims again. Where the default image's name comes
/// from (flags, config, default) is `GridSettings.defaultImage`'s business.
public struct DefaultImageCheck: Sendable {
    public let store: ImageStore?
    public let reference: String

    public init(store: ImageStore?, reference: String) {
        self.store = store
        self.reference = reference
    }

    /// Why the image cannot run here. `reason` and `fix` hold only the
    /// reference, digests, fixed words and commands — they go into the node
    /// record everyone reads; `detail` (host paths included) is for the log.
    public struct Problem: Error, Equatable, Sendable, CustomStringConvertible {
        public let reason: String
        public let fix: String
        public let detail: String

        /// "image X …; fix: COMMAND": the node record's `reason`.
        public var published: String { "\(reason); fix: \(fix)" }
        public var description: String { published }
    }

    /// The busybox image dgrid's own recipe builds (images/README.md).
    static let embeddedDefault = "dgrid/busybox:latest"

    /// nil when the image resolves (allowlisted, pinned, in the store, every layer unpacked).
    public func problem() -> Problem? {
        guard let store else {
            return Problem(reason: "the image store of this worker cannot be opened",
                           fix: "check that $DGRID_HOME is a private directory owned by this user (dgrid image list shows the error)",
                           detail: "no image store")
        }
        do {
            let resolved = try ImageResolver(store: store).resolve(reference: reference)
            resolved.lease.release()
            return nil
        } catch {
            return problem(error, store: store)
        }
    }

    private func problem(_ error: ImageError, store: ImageStore) -> Problem {
        let name = "image \(reference)"
        switch error {
        case .notAllowlisted, .notPinned:
            if (try? store.index.image(named: localName)) != nil {
                return Problem(reason: "\(name) is in the local store but not allowed to run",
                               fix: "dgrid image allow \(reference) --approved-by NAME", detail: "\(error)")
            }
            return Problem(reason: "\(name) is neither in the local store nor allowed to run", fix: bringIn(digest: nil),
                           detail: "\(error)")
        case .notInStore(_, let digest):
            return Problem(reason: "\(name) is allowed (\(digest)) but not in the local store", fix: bringIn(digest: digest),
                           detail: "\(error)")
        case .invalidReference, .invalidDigest:
            return Problem(reason: "\(name) is not a valid image reference",
                           fix: "set the worker's default image to a name like dgrid/busybox:latest or a sha256: digest",
                           detail: "\(error)")
        default:
            return Problem(reason: "\(name) is in the local store but cannot be used (\(SetupFailureReport.caseName(error)))",
                           fix: "dgrid image verify, then import or pull \(reference) again", detail: "\(error)")
        }
    }

    /// The name the local index keys the image by ("repository:tag").
    private var localName: String {
        (try? ImageReference(parsing: reference).name) ?? reference
    }

    /// The commands that put the image into this worker's store and allow it.
    private func bringIn(digest: Digest?) -> String {
        let allow = "dgrid image allow \(reference) --approved-by NAME"
        if localName == Self.embeddedDefault {
            let importing = "images/build-busybox-image.sh /tmp/busybox-oci && dgrid image import /tmp/busybox-oci"
            return digest == nil ? "\(importing) && \(allow)" : importing
        }
        let repository = (try? ImageReference(parsing: reference).repository) ?? reference
        if RegistryLocation.namesRegistry(repository) {
            if let digest { return "dgrid image pull \(repository)@\(digest)" }
            return "\(allow) (it prints the digest D), then dgrid image pull \(repository)@D"
        }
        let importing = "dgrid image import DIR (an OCI layout or docker save archive of \(reference))"
        return digest == nil ? "\(importing), then \(allow)" : importing
    }
}
