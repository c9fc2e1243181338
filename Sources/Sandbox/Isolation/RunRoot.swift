import CShims
import Glibc

/// What a sandbox's root is built from, and the per-run directory under
/// `$DGRID_HOME/run/<sandbox id>` that anchors it. The child builds the root
/// in a staging tmpfs mounted on `anchor`, in its own mount namespace
/// (dgrid_spawn.h, "the root"): an image is an overlay of its shared layers
/// over dgrid's own mount-point layer, with any writes in that tmpfs, so no
/// layer is ever written after it was unpacked, a writable root is bounded,
/// and nothing of a run outlives it on the host but this directory.
///
/// Where overlay is refused, `copy()` merges the layers into `copy/` in the
/// same run directory instead (DESIGN.md §5: fall back only then, and say so).
struct RunRoot {
    /// nil for a rootless run of a rootfs directory, which needs no state.
    let runDirectory: String?
    /// The directory the child mounts its staging tmpfs on (in its own mount
    /// namespace: the host never sees what is mounted there).
    let anchor: String
    /// The trees the root is built from, lowest first: an image's layers, or
    /// one rootfs directory.
    let lowers: [String]
    /// True for an image (an overlay of `lowers`); false for one rootfs tree.
    let overlay: Bool
    /// Why these layers cannot be one overlay mount at all, decided before
    /// any spawn; nil when the kernel gets to try.
    let refusal: String?

    /// A plain rootfs directory (already resolved). Rootless, the child
    /// anchors its staging on the rootfs directory itself (it clones the tree
    /// first; the host's view of the directory does not change); as root, on
    /// a run directory root owns, because the child looks the anchor up with
    /// the worker's ids but no privilege over other users' directories.
    static func directory(_ rootfs: String, sandboxID: String, state: StateDirectory) throws(SandboxError) -> RunRoot {
        guard geteuid() == 0 else {
            return RunRoot(runDirectory: nil, anchor: rootfs, lowers: [rootfs], overlay: false, refusal: nil)
        }
        let run = try makeRunDirectory(sandboxID: sandboxID, state: state)
        return RunRoot(runDirectory: run, anchor: run + "/root", lowers: [rootfs], overlay: false, refusal: nil)
    }

    /// An image's layer directories, lowest first.
    static func layers(_ layers: [String], sandboxID: String, state: StateDirectory) throws(SandboxError) -> RunRoot {
        for layer in layers {
            var st = stat()
            guard lstat(layer, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
                throw .rootfs(path: layer, reason: "image layer is missing; re-import the image")
            }
        }
        let run = try makeRunDirectory(sandboxID: sandboxID, state: state)
        // Each lower costs one descriptor sent with the go byte and ~22 bytes
        // of the overlay's one page of options.
        let refusal = layers.count > Int(DGRID_MAX_LOWERS)
            ? "it has \(layers.count) layers, over the \(DGRID_MAX_LOWERS) one overlay mount takes" : nil
        return RunRoot(runDirectory: run, anchor: run + "/root", lowers: layers, overlay: true, refusal: refusal)
    }

    private static func makeRunDirectory(sandboxID: String, state: StateDirectory) throws(SandboxError) -> String {
        let run: String
        do { run = try state.directory("run/\(sandboxID)") } catch {
            throw .rootfs(path: state.path + "/run", reason: error.description)
        }
        guard mkdir(run + "/root", 0o700) == 0 else {
            let err = errno
            _ = rmdir(run)
            throw .rootfs(path: run + "/root", reason: errnoText(err))
        }
        return run
    }

    /// Merges the layers into `copy/` in the run directory, for a rootfs
    /// where overlay was refused; returns the root to run from instead.
    /// Costs a full copy of the image, which is why it is only the fallback.
    func copy() throws(SandboxError) -> RunRoot {
        guard let runDirectory else { throw .invalidSpec("only an image's layers are ever copied") }
        let copy = runDirectory + "/copy"
        guard mkdir(copy, 0o755) == 0 else { throw .rootfs(path: copy, reason: errnoText(errno)) }
        do {
            try LayerCopy.merge(layers: lowers, into: copy)
        } catch {
            throw .rootfs(path: copy, reason: "copying the image's layers (overlay was refused): \(error)")
        }
        return RunRoot(runDirectory: runDirectory, anchor: anchor, lowers: [copy], overlay: false, refusal: nil)
    }

    /// Removes the run directory. Byte-exact names and no symlink followed
    /// (a copy's `x -> /etc` must not take the host's /etc).
    func remove() {
        guard let runDirectory, let slash = runDirectory.lastIndex(of: "/") else { return }
        let parent = open(String(runDirectory[..<slash]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        _ = removeTree(in: parent, name: String(runDirectory[runDirectory.index(after: slash)...]))
    }
}
