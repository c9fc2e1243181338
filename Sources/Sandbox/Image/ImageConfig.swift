import SandboxSupport
/// An image config (OCI `application/vnd.oci.image.config.v1+json` or Docker
/// `application/vnd.docker.container.image.v1+json`), reduced to what dgrid
/// uses. Values are as the image author wrote them; `ImageRunConfig` is the
/// validated form a run may use.
public struct ImageConfig: Sendable, Equatable {
    public var architecture: String?
    public var os: String?
    public var variant: String?
    /// The sha256 of each uncompressed layer, lowest first.
    public var diffIDs: [Digest]
    public var env: [String]
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var workingDir: String?
    public var user: String?

    /// Parses and checks the structure: `rootfs.type` "layers", well-formed
    /// diff_ids, and an os/architecture (when given) that runs on `platform`
    /// (nil: any platform, for bookkeeping such as gc).
    public static func parse(_ bytes: [UInt8], what: String, platform: Platform? = .host) throws(ImageError) -> ImageConfig {
        let raw = try JSONDocument.decode(Raw.self, from: bytes, what: what)
        func refuse(_ reason: String) -> ImageError { .invalidDocument(what: what, reason: reason) }
        guard raw.rootfs.type == "layers" else {
            throw refuse("rootfs.type '\(UntrustedText.shown(raw.rootfs.type, limit: 40))': expected 'layers'")
        }
        guard raw.rootfs.diff_ids.count <= ImageManifest.maxLayers else {
            throw refuse("\(raw.rootfs.diff_ids.count) diff_ids, more than the \(ImageManifest.maxLayers) dgrid accepts")
        }
        let config = ImageConfig(architecture: raw.architecture, os: raw.os, variant: raw.variant,
                                 diffIDs: raw.rootfs.diff_ids, env: raw.config?.Env ?? [],
                                 entrypoint: raw.config?.Entrypoint, cmd: raw.config?.Cmd,
                                 workingDir: raw.config?.WorkingDir, user: raw.config?.User)
        if let platform, let os = config.os, let architecture = config.architecture {
            let own = Platform(architecture: architecture, os: os, variant: config.variant)
            guard own.runs(on: platform) else {
                throw refuse("built for \(own), this host runs \(platform)")
            }
        }
        return config
    }

    private struct Raw: Decodable {
        struct Container: Decodable {
            // The image-spec's own capitalized names.
            // swiftlint:disable identifier_name
            var Env: [String]?
            var Entrypoint: [String]?
            var Cmd: [String]?
            var WorkingDir: String?
            var User: String?
            // swiftlint:enable identifier_name
        }

        struct RootFS: Decodable {
            var type: String
            var diff_ids: [Digest]
        }

        var architecture: String?
        var os: String?
        var variant: String?
        var config: Container?
        var rootfs: RootFS
    }
}

/// The parts of an image config a run uses, validated against what an image
/// author could do with them (docs/THREATS.md "image author"):
/// - `env`: `KEY=VALUE` entries with a non-empty key; no NUL anywhere.
/// - `workingDirectory`: absolute, normalized (no `.` or empty components),
///   never `..`, never `/proc` or `/sys` or below them; "/" when unset.
/// - `user`: numeric `uid[:gid]` only (gid defaults to uid, as `--user` does);
///   a name is refused, never looked up in the image's /etc/passwd (Docker
///   CVE-2019-14271 loaded the image's NSS on the host). nil when unset, so
///   the run's own default applies.
public struct ImageRunConfig: Sendable, Equatable {
    public let environment: [String]
    public let entrypoint: [String]
    public let command: [String]
    public let workingDirectory: String
    public let user: UserID?

    /// The argv a run executes, with Docker's rules: the image's Entrypoint,
    /// followed by the task's arguments when it gives any, else by the
    /// image's Cmd. Empty when the image says nothing and the task neither.
    public func argv(taskArguments: [String]) -> [String] {
        entrypoint + (taskArguments.isEmpty ? command : taskArguments)
    }

    /// Bounds on what a config may ask for; a larger value is refused.
    static let maxEntries = 4096
    static let maxValueBytes = 128 * 1024

    public init(validating config: ImageConfig, image: Digest) throws(ImageError) {
        func refuse(_ field: String, _ value: String, _ reason: String) -> ImageError {
            .invalidConfig(image: image, field: field, value: value, reason: reason)
        }
        func checkStrings(_ field: String, _ values: [String]) throws(ImageError) {
            guard values.count <= Self.maxEntries else {
                throw refuse(field, "\(values.count) entries", "more than \(Self.maxEntries)")
            }
            for value in values {
                guard !value.utf8.contains(0) else { throw refuse(field, value, "contains a NUL byte") }
                guard value.utf8.count <= Self.maxValueBytes else {
                    throw refuse(field, String(value.prefix(40)), "longer than \(Self.maxValueBytes) bytes")
                }
            }
        }
        try checkStrings("Env", config.env)
        for entry in config.env {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw refuse("Env", entry, "expected KEY=VALUE with a non-empty KEY")
            }
        }
        try checkStrings("Entrypoint", config.entrypoint ?? [])
        try checkStrings("Cmd", config.cmd ?? [])
        environment = config.env
        entrypoint = config.entrypoint ?? []
        command = config.cmd ?? []

        do {
            workingDirectory = try Self.workingDirectory(config.workingDir)
        } catch {
            throw refuse("WorkingDir", config.workingDir ?? "", error.hint)
        }
        if let text = config.user, !text.isEmpty {
            do {
                user = try UserID(parsing: text)
            } catch {
                throw refuse("User", text, "only a numeric uid[:gid] is accepted; names are never resolved through the image's files (set a numeric User, or run with an explicit --user)")
            }
        } else {
            user = nil
        }
    }

    /// The normalized working directory, or the reason it is refused.
    static func workingDirectory(_ text: String?) throws(ValueError) -> String {
        guard let text, !text.isEmpty else { return "/" }
        func refuse(_ hint: String) -> ValueError { ValueError(kind: "working directory", text: text, hint: hint) }
        guard text.hasPrefix("/") else { throw refuse("must be an absolute path") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw refuse("contains control characters")
        }
        guard text.utf8.count <= 4096 else { throw refuse("longer than 4096 bytes") }
        var components: [Substring] = []
        for component in text.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." { throw refuse("must not contain '..'") }
            components.append(component)
        }
        if let first = components.first, first == "proc" || first == "sys" {
            throw refuse("must not be under /\(first)")
        }
        return "/" + components.joined(separator: "/")
    }
}
