import SandboxSupport
/// An allowlisted image, ready for a run: its layers unpacked and leased, its
/// config validated.
public struct ResolvedImage: Sendable {
    /// The reference as the task gave it.
    public let reference: String
    /// The allowlist entry's name (`repository:tag`) that allowed it.
    public let allowlistedName: String
    public let manifestDigest: Digest
    public let configDigest: Digest
    /// The unpacked layers, lowest first (overlayfs wants `lowerdir=`
    /// highest first: the spawn path reverses them).
    public let layers: [StoredLayer]
    /// Env, Entrypoint, Cmd, WorkingDir and User, validated.
    public let config: ImageRunConfig
    /// Shared in-use locks on the layers: hold it until the sandbox has
    /// exited, so `gc` cannot remove a layer under a running task.
    public let lease: LayerLease
}

/// Turns a task's image reference into a `ResolvedImage`.
///
/// **Decision (docs/ARCHITECTURE.md §5):** tasks run images by digest only. The reference
/// must be an allowlisted name (`repository[:tag]`, optionally with
/// `@digest`, which must equal the pinned one) or a digest some allowlist
/// entry pins. Anything else is refused before any image byte is read; the
/// allowlist is the only file read until then.
public struct ImageResolver: Sendable {
    public let store: ImageStore
    public let platform: Platform

    public init(store: ImageStore, platform: Platform = .host) {
        self.store = store
        self.platform = platform
    }

    /// Resolves `reference` for a run; see the type's documentation.
    public func resolve(reference: String) throws(ImageError) -> ResolvedImage {
        let (entryName, digest) = try allowlisted(reference)
        guard store.content.has(digest) else { throw .notInStore(reference: reference, digest: digest) }
        let image = try store.loadImage(manifest: digest, platform: platform)
        let config = try ImageRunConfig(validating: image.config, image: digest)
        let lease = try store.layers.lease(image.config.diffIDs)
        return ResolvedImage(reference: reference, allowlistedName: entryName, manifestDigest: digest,
                             configDigest: image.configDigest,
                             layers: image.config.diffIDs.map { StoredLayer(diffID: $0, directory: store.layers.path(for: $0)) },
                             config: config, lease: lease)
    }

    /// The allowlist entry name and pinned digest for `reference`, or the
    /// refusal. Reads nothing but the allowlist.
    public func allowlisted(_ reference: String) throws(ImageError) -> (name: String, digest: Digest) {
        let entries = try store.allowlist.entries()
        // "sha256:…" is always a digest (as a name it would be repository
        // "sha256" with a hex tag, which nobody means).
        if reference.hasPrefix("sha256:") {
            let digest = try Digest.parsingReference(reference)
            guard let entry = entries.first(where: { $0.digest == digest }) else { throw .notAllowlisted(reference) }
            return (entry.name, digest)
        }
        let parsed = try ImageReference(parsing: reference)
        guard let entry = entries.first(where: { $0.name == parsed.name }) else { throw .notAllowlisted(reference) }
        guard let pinned = entry.digest else { throw .notPinned(entry.name) }
        if let requested = parsed.digest, requested != pinned {
            throw .pinnedToOtherDigest(name: entry.name, pinned: pinned, requested: requested)
        }
        return (entry.name, pinned)
    }
}
