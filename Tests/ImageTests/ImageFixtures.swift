import Foundation
import Synchronization
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// Images for the image tests, each built once per test process and never
/// changed (tests that damage one work on a copy).
enum ImageFixture {
    private static let busybox = Mutex<String?>(nil)

    /// The embedded default image, built by the project's script.
    static func busyboxLayout() throws -> String {
        try busybox.withLock { cached in
            if let cached { return cached }
            let dir = try TempDir.make(prefix: "dgrid-test-busybox-image").path + "/layout"
            try Shell.check([packageRoot.appendingPathComponent("images/build-busybox-image.sh").path, dir])
            cached = dir
            return dir
        }
    }

    /// A fresh, empty store (its own DGRID_HOME).
    static func store() throws -> ImageStore {
        try ImageStore(state: StateDirectory(path: try TempDir.make(prefix: "dgrid-test-home").path))
    }

    /// A private copy of the busybox layout.
    static func busyboxCopy() throws -> String {
        let dir = try TempDir.make(prefix: "dgrid-test-layout").path + "/layout"
        try Shell.check(["cp", "-a", try busyboxLayout(), dir])
        return dir
    }

    /// An OCI layout tar of `layout` (names like "./blobs/sha256/…", as `tar -C DIR .` writes them).
    static func tar(_ layout: String, compress: Bool = false) throws -> String {
        let out = try TempDir.make(prefix: "dgrid-test-tar").path + (compress ? "/image.tar.gz" : "/image.tar")
        try Shell.check(["tar", compress ? "-czf" : "-cf", out, "-C", layout, "."])
        return out
    }

    /// `skopeo copy oci:… oci-archive:…` of the busybox image.
    static func skopeoArchive() throws -> String {
        let out = try TempDir.make(prefix: "dgrid-test-skopeo").path + "/busybox.tar"
        try Shell.check(["skopeo", "--insecure-policy", "copy", "oci:\(try busyboxLayout()):dgrid/busybox:latest",
                         "oci-archive:\(out):dgrid/busybox:latest"])
        return out
    }

    /// An image built with umoci: `new`, `unpack`, add busybox, `repack`,
    /// `config`. (umoci 0.4.7's `insert` writes a tar without its end blocks;
    /// dgrid refuses that layer as truncated, rightly.)
    static func umociLayout() throws -> String {
        let base = try TempDir.make(prefix: "dgrid-test-umoci").path
        let layout = base + "/layout", bundle = base + "/bundle"
        try Shell.check(["umoci", "init", "--layout", layout])
        try Shell.check(["umoci", "new", "--image", "\(layout):v1"])
        try Shell.check(["umoci", "unpack", "--image", "\(layout):v1", bundle])
        try Shell.check(["mkdir", "-p", "\(bundle)/rootfs/bin", "\(bundle)/rootfs/work"])
        try Shell.check(["cp", "/bin/busybox", "\(bundle)/rootfs/bin/busybox"])
        try Shell.check(["ln", "-s", "busybox", "\(bundle)/rootfs/bin/sh"])
        try Shell.check(["umoci", "repack", "--image", "\(layout):v1", bundle])
        try Shell.check(["umoci", "config", "--image", "\(layout):v1", "--config.workingdir", "/work",
                         "--config.user", "1000:1000", "--config.cmd", "sh", "--config.env", "GREETING=hello"])
        return layout
    }

    enum DockerSaveStyle: String {
        /// `<id>/layer.tar`, `<config hex>.json`, manifest.json, repositories.
        case legacy
        /// Docker 25+: blobs under blobs/sha256, `<id>/layer.tar` a symlink to them.
        case symlinks
    }

    /// A `docker save`-shaped tar built with Python's tarfile: one layer
    /// (busybox, sh, etc/hello), named docker/busybox:saved.
    static func dockerSaveTar(_ style: DockerSaveStyle, extraLayerDiffID: Bool = false) throws -> String {
        let out = try TempDir.make(prefix: "dgrid-test-docker").path + "/saved.tar"
        let script = """
        import hashlib, io, json, platform, sys, tarfile
        out, style, extra = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
        def add(t, name, data, mode=0o644):
            info = tarfile.TarInfo(name); info.size = len(data); info.mode = mode; info.mtime = 0
            t.addfile(info, io.BytesIO(data))
        def link(t, name, target):
            info = tarfile.TarInfo(name); info.type = tarfile.SYMTYPE; info.linkname = target; t.addfile(info)
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w", format=tarfile.USTAR_FORMAT) as t:
            d = tarfile.TarInfo("bin"); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
            add(t, "bin/busybox", open("/bin/busybox", "rb").read(), 0o755)
            link(t, "bin/sh", "busybox")
            add(t, "etc/hello", b"hello from docker save\\n")
        layer = layer.getvalue()
        diff = hashlib.sha256(layer).hexdigest()
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        diff_ids = ["sha256:" + diff] + (["sha256:" + "0" * 64] if extra else [])
        config = json.dumps({"architecture": arch, "os": "linux",
                             "config": {"Env": ["PATH=/bin", "SAVED=1"], "Cmd": ["sh"], "WorkingDir": "/"},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cid = hashlib.sha256(config).hexdigest()
        layer_dir = "4b1d" * 16
        with tarfile.open(out, "w") as t:
            if style == "legacy":
                add(t, layer_dir + "/VERSION", b"1.0")
                add(t, layer_dir + "/json", b"{}")
                add(t, layer_dir + "/layer.tar", layer)
                add(t, cid + ".json", config)
                manifest = [{"Config": cid + ".json", "RepoTags": ["docker/busybox:saved"], "Layers": [layer_dir + "/layer.tar"]}]
            else:
                add(t, "blobs/sha256/" + diff, layer)
                add(t, "blobs/sha256/" + cid, config)
                link(t, layer_dir + "/layer.tar", "../blobs/sha256/" + diff)
                manifest = [{"Config": "blobs/sha256/" + cid, "RepoTags": ["docker/busybox:saved"], "Layers": [layer_dir + "/layer.tar"]}]
            add(t, "manifest.json", json.dumps(manifest).encode())
            add(t, "repositories", json.dumps({"docker/busybox": {"saved": layer_dir}}).encode())
        """
        try Shell.check(["python3", "-c", script, out, style.rawValue, extraLayerDiffID ? "1" : "0"])
        return out
    }
}

/// Rewrites an OCI layout's manifest and config (in a copy) and keeps every
/// digest and size consistent, so a test can hand dgrid an image that is
/// well-formed except for the one thing it checks.
struct LayoutEditor {
    let layout: String

    private var index: [String: Any] {
        get throws {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any] ?? [:]
        }
    }

    private func blob(_ digest: String) -> String {
        layout + "/blobs/sha256/" + digest.dropFirst("sha256:".count)
    }

    private func object(_ digest: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: blob(digest)))) as? [String: Any] ?? [:]
    }

    /// Writes `bytes` as a blob; returns (digest, size).
    @discardableResult
    func write(_ bytes: Data) throws -> (String, Int) {
        let digest = Digest(of: Array(bytes)).description
        try bytes.write(to: URL(fileURLWithPath: blob(digest)))
        return (digest, bytes.count)
    }

    func manifestDigest() throws -> String {
        let manifests = try index["manifests"] as? [[String: Any]] ?? []
        return manifests.first?["digest"] as? String ?? ""
    }

    /// Changes the manifest (and, through `config`, the config), then rewrites
    /// the blobs and index.json with the new digests.
    func edit(manifest change: (inout [String: Any]) -> Void = { _ in },
              config changeConfig: (inout [String: Any]) -> Void = { _ in }) throws {
        var manifest = try object(try manifestDigest())
        var configDescriptor = manifest["config"] as? [String: Any] ?? [:]
        var config = try object(configDescriptor["digest"] as? String ?? "")
        changeConfig(&config)
        let (configDigest, configSize) = try write(try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]))
        configDescriptor["digest"] = configDigest
        configDescriptor["size"] = configSize
        manifest["config"] = configDescriptor
        change(&manifest)
        try setManifest(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]))
    }

    /// Points index.json at `bytes` as the one manifest.
    func setManifest(_ bytes: Data, mediaType: String = "application/vnd.oci.image.manifest.v1+json") throws {
        let (digest, size) = try write(bytes)
        var index = try self.index
        var manifests = index["manifests"] as? [[String: Any]] ?? [[:]]
        manifests[0]["digest"] = digest
        manifests[0]["size"] = size
        manifests[0]["mediaType"] = mediaType
        index["manifests"] = manifests
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])
            .write(to: URL(fileURLWithPath: layout + "/index.json"))
    }

    /// The layer blob's path.
    func layerPath() throws -> String {
        let manifest = try object(try manifestDigest())
        let layers = manifest["layers"] as? [[String: Any]] ?? []
        return blob(layers.first?["digest"] as? String ?? "")
    }
}

extension ImageError {
    /// The case name, for table tests ("digestMismatch").
    var caseName: String {
        Mirror(reflecting: self).children.first?.label ?? "\(self)"
    }
}
