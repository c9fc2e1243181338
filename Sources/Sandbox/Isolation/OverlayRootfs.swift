import Glibc

/// The root filesystem of an image run: a per-run directory under
/// `$DGRID_HOME/run/<sandbox id>` with the overlay's mount point (and upper and
/// work directories when writable). The overlay itself is mounted by the child
/// in its own mount namespace; only these directories need cleaning up.
struct OverlayRootfs {
    let runDirectory: String?
    /// Where the child mounts the overlay (or the single layer, bind-mounted).
    let mountPoint: String
    /// The layer store all layers live in; lowerdir entries are relative to it.
    let base: String?
    let data: String?

    /// The kernel takes at most one page of mount options.
    static let maximumOptionBytes = 4095

    static func prepare(layers: [String], writable: Bool, sandboxID: String, state: StateDirectory) throws(SandboxError) -> OverlayRootfs {
        let parents = Set(layers.map { parentDirectory(of: $0) })
        guard parents.count == 1, let base = parents.first else {
            throw .invalidSpec("image layers must all live in one layer store")
        }
        let names = layers.map { String($0.dropFirst(base.count + 1)) }
        // Overlay options are split on ':' and ','; layer names are digests, never these.
        guard names.allSatisfy({ !$0.isEmpty && !$0.contains(where: { ":,\\/".contains($0) }) }) else {
            throw .invalidSpec("layer directory names must not contain ':', ',', '\\' or '/'")
        }
        for layer in layers {
            var st = stat()
            guard lstat(layer, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw .rootfs(path: layer, reason: "image layer is missing; re-import the image")
            }
        }
        if layers.count == 1 && !writable {
            // A lone read-only layer needs no overlay (overlay wants two lowers
            // without an upper): bind it directly, read-only like any rootfs.
            return OverlayRootfs(runDirectory: nil, mountPoint: layers[0], base: nil, data: nil)
        }
        let run: String
        do { run = try state.directory("run/\(sandboxID)") } catch {
            throw .rootfs(path: state.path + "/run", reason: error.description)
        }
        let merged = run + "/rootfs"
        guard mkdir(merged, 0o755) == 0 else { throw .rootfs(path: merged, reason: errnoText(errno)) }

        var data = "lowerdir=" + names.reversed().joined(separator: ":")
        if writable {
            for dir in ["upper", "work"] where mkdir("\(run)/\(dir)", 0o755) != 0 {
                throw .rootfs(path: "\(run)/\(dir)", reason: errnoText(errno))
            }
            data += ",upperdir=\(run)/upper,workdir=\(run)/work"
        }
        guard data.utf8.count <= maximumOptionBytes else {
            removeTree(run)
            throw .invalidSpec("image has too many layers (\(layers.count)) for one overlay mount")
        }
        return OverlayRootfs(runDirectory: run, mountPoint: merged, base: base, data: data)
    }

    func remove() {
        if let runDirectory { removeTree(runDirectory) }
    }

    private static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}
