import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// Manifests, indexes, configs and references are attacker input (docs/THREATS.md:
/// image author, network peer): each parsed once, refused with one reason.
@Suite(.unit) struct ImageDocumentTests {
    static let d1 = "sha256:" + String(repeating: "1", count: 64)
    static let d2 = "sha256:" + String(repeating: "2", count: 64)
    static let d3 = "sha256:" + String(repeating: "3", count: 64)
    static let config = #"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(d1)","size":10}"#
    static let layer = #"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(d2)","size":20}"#
    static let oci = "application/vnd.oci.image.manifest.v1+json"

    static func manifest(_ extra: String = "", mediaType: String? = oci, config: String = config, layers: String = "[\(layer)]") -> String {
        var fields = [#""schemaVersion":2"#, #""config":\#(config)"#, #""layers":\#(layers)"#]
        if let mediaType { fields.append(#""mediaType":"\#(mediaType)""#) }
        if !extra.isEmpty { fields.append(extra) }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static let manyLayers = "[" + Array(repeating: layer, count: 129).joined(separator: ",") + "]"

    /// One row per malformed document and the words its refusal must contain.
    @Test(arguments: [
        (manifest(#""manifests":[]"#), "both 'manifests'"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"layers":[]}"#, "both 'manifests'"),
        (manifest(mediaType: "application/vnd.example.thing+json"), "unknown media type"),
        (manifest(mediaType: "application/vnd.oci.image.index.v1+json"), "says image index"),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#, "says manifest"),
        (#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#, "schema 1"),
        (#"{"schemaVersion":3,"config":\#(config),"layers":[]}"#, "schemaVersion 3"),
        (#"{"config":\#(config),"layers":[\#(layer)]}"#, "schemaVersion: missing"),
        (manifest(layers: "[]"), "no layers"),
        (manifest(layers: manyLayers), "129 layers"),
        (manifest(config: #"{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"\#(d1)","size":1}"#), "not a container image config"),
        (manifest(layers: #"[{"mediaType":"application/x-tar+bzip2","digest":"\#(d2)","size":1}]"#), "unsupported layer media type"),
        (manifest(layers: #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:ABC","size":1}]"#), "invalid digest"),
        (manifest(layers: #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:\#(String(repeating: "A", count: 64))","size":1}]"#), "invalid digest"),
        (manifest(layers: #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"md5:abcd","size":1}]"#), "unsupported digest algorithm"),
        (manifest(layers: #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(d2)","size":-1}]"#), "negative size"),
        (manifest(layers: #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(d2)"}]"#), "layers[0].size: missing"),
        (manifest(layers: #"[{"mediaType":"no slash","digest":"\#(d2)","size":1}]"#), "not a media type"),
        ("[]", "expected an object"),
        ("not json", "not valid JSON"),
        (#"{"schemaVersion":2}"#, "neither 'manifests'"),
    ])
    func malformedDocumentsAreRefused(json: String, reason: String) {
        do {
            _ = try OCIDocument.parse(Array(json.utf8), declaredMediaType: nil, what: "manifest")
            Issue.record("accepted: \(json.prefix(120))")
        } catch {
            #expect(error.description.contains(reason), "\(error.description) should say \(reason)")
        }
    }

    @Test func theDescriptorsMediaTypeMustAgreeWithTheDocuments() {
        #expect(throws: ImageError.self) {
            try OCIDocument.parse(Array(Self.manifest().utf8), declaredMediaType: OCIMediaType.dockerManifest, what: "m")
        }
    }

    @Test(arguments: [OCIMediaType.ociManifest, OCIMediaType.dockerManifest])
    func ociAndDockerSchema2ManifestsParse(mediaType: String) throws {
        let docker = #"{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"\#(Self.d1)","size":10}"#
        let layers = #"[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"\#(Self.d2)","size":5}]"#
        let json = mediaType == OCIMediaType.ociManifest ? Self.manifest() : Self.manifest(mediaType: mediaType, config: docker, layers: layers)
        guard case .manifest(let manifest) = try OCIDocument.parse(Array(json.utf8), declaredMediaType: mediaType, what: "m") else {
            Issue.record("not a manifest")
            return
        }
        #expect(manifest.layers.count == 1)
        #expect(manifest.config.digest == (try Digest(parsing: Self.d1)))
    }

    @Test func aManifestWithoutMediaTypeIsRecognizedByShape() throws {
        let parsed = try OCIDocument.parse(Array(Self.manifest(mediaType: nil).utf8), declaredMediaType: nil, what: "m")
        guard case .manifest = parsed else {
            Issue.record("not a manifest")
            return
        }
    }

    static func index(_ entries: [(String, String?)]) -> String {
        let manifests = entries.map { digest, platform in
            let p = platform.map { text -> String in
                let parts = text.split(separator: "/").map(String.init)
                return #","platform":{"os":"\#(parts[0])","architecture":"\#(parts[1])"\#(parts.count > 2 ? #","variant":"\#(parts[2])""# : "")}"#
            } ?? ""
            return #"{"mediaType":"\#(oci)","digest":"\#(digest)","size":100\#(p)}"#
        }
        return #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[\#(manifests.joined(separator: ","))]}"#
    }

    @Test func platformSelectionPicksLinuxAmd64FromAnIndex() throws {
        let json = Self.index([(Self.d1, "linux/arm64/v8"), (Self.d2, "linux/amd64"), (Self.d3, "unknown/unknown")])
        guard case .index(let index) = try OCIDocument.parse(Array(json.utf8), declaredMediaType: nil, what: "i") else {
            Issue.record("not an index")
            return
        }
        let amd64 = try index.select(platform: Platform(architecture: "amd64", os: "linux"), indexDigest: Digest(of: []))
        #expect(amd64.digest.description == Self.d2)
        let arm64 = try index.select(platform: Platform(architecture: "arm64", os: "linux", variant: "v8"), indexDigest: Digest(of: []))
        #expect(arm64.digest.description == Self.d1)
        #expect {
            try index.select(platform: Platform(architecture: "s390x", os: "linux"), indexDigest: Digest(of: []))
        } throws: { error in
            "\(error)".contains("no linux/s390x manifest") && "\(error)".contains("linux/amd64")
        }
    }

    // MARK: config

    static func config(diffIDs: Int = 1, architecture: String = "amd64", user: String = "", workdir: String = "") -> [UInt8] {
        let ids = (0..<diffIDs).map { _ in #""\#(d3)""# }.joined(separator: ",")
        return Array(#"{"architecture":"\#(architecture)","os":"linux","config":{"Env":["A=1"],"Entrypoint":null,"Cmd":["sh"],"WorkingDir":"\#(workdir)","User":"\#(user)"},"rootfs":{"type":"layers","diff_ids":[\#(ids)]}}"#.utf8)
    }

    @Test func configsParseAndForeignArchitecturesAreRefused() throws {
        let config = try ImageConfig.parse(Self.config(), what: "c", platform: Platform(architecture: "amd64", os: "linux"))
        #expect(config.diffIDs.count == 1)
        #expect(config.env == ["A=1"])
        #expect(config.entrypoint == nil)
        #expect(config.cmd == ["sh"])
        #expect {
            try ImageConfig.parse(Self.config(architecture: "arm64"), what: "c", platform: Platform(architecture: "amd64", os: "linux"))
        } throws: { "\($0)".contains("built for linux/arm64") }
        #expect(throws: ImageError.self) {
            try ImageConfig.parse(Array(#"{"rootfs":{"type":"layers","diff_ids":["sha256:abc"]}}"#.utf8), what: "c")
        }
    }

    /// WorkingDir: absolute, no "..", never /proc or /sys; normalized otherwise.
    @Test(arguments: [
        ("", "/"), ("/", "/"), ("/work", "/work"), ("/a//b/./c/", "/a/b/c"), ("/procfs", "/procfs"), ("/home/sys", "/home/sys"),
    ])
    func acceptedWorkingDirectories(text: String, normalized: String) throws {
        #expect(try ImageRunConfig.workingDirectory(text) == normalized)
    }

    @Test(arguments: ["work", "./work", "/a/../b", "/..", "/proc", "/proc/self", "//proc/1/root", "/sys", "/./sys/kernel", "/a\n/b"])
    func refusedWorkingDirectories(text: String) {
        #expect(throws: ValueError.self) { try ImageRunConfig.workingDirectory(text) }
    }

    /// User: numeric uid[:gid] only; names are never resolved through the image.
    @Test(arguments: [
        ("", nil), ("0", "0:0"), ("1000", "1000:1000"), ("1000:100", "1000:100"),
    ] as [(String, String?)])
    func acceptedUsers(text: String, user: String?) throws {
        let config = try ImageConfig.parse(Self.config(user: text), what: "c", platform: nil)
        #expect(try ImageRunConfig(validating: config, image: Digest(of: [])).user?.description == user)
    }

    @Test(arguments: ["root", "nobody", "1000:staff", "www-data:1000", "1:2:3", "-1", "4294967295"])
    func refusedUsers(text: String) throws {
        let config = try ImageConfig.parse(Self.config(user: text), what: "c", platform: nil)
        #expect {
            try ImageRunConfig(validating: config, image: Digest(of: []))
        } throws: { error in
            "\(error)".contains("config User '\(text)'") && "\(error)".contains("numeric")
        }
    }

    @Test func badEnvironmentEntriesAreRefused() throws {
        for env in [#"["NOEQUALS"]"#, #"["=value"]"#, #"["A=\u0000"]"#] {
            let json = #"{"config":{"Env":\#(env)},"rootfs":{"type":"layers","diff_ids":[]}}"#
            let config = try ImageConfig.parse(Array(json.utf8), what: "c", platform: nil)
            #expect(throws: ImageError.self) { try ImageRunConfig(validating: config, image: Digest(of: [])) }
        }
    }

    // MARK: references

    @Test(arguments: [
        ("busybox", "busybox:latest"), ("dgrid/busybox:latest", "dgrid/busybox:latest"),
        ("registry.example.com:5000/team/app:v1.2", "registry.example.com:5000/team/app:v1.2"),
        ("localhost/app", "localhost/app:latest"), ("a__b/c-d--e.f:T_1", "a__b/c-d--e.f:T_1"),
    ])
    func referencesParse(text: String, name: String) throws {
        #expect(try ImageReference(parsing: text).name == name)
    }

    @Test(arguments: ["", "Busybox", "busybox:", "busybox:-x", "/busybox", "busybox/", "a//b", "bad name", "x@sha256:123",
                      "x@sha256:" + String(repeating: "A", count: 64), "-x", "x_", "a...b", "host:99999/x"])
    func badReferencesAreRefused(text: String) {
        #expect(throws: ImageError.self) { try ImageReference(parsing: text) }
    }

    @Test func commandsSplitWithoutAShell() throws {
        #expect(try CommandWords.split(#"trivy image --input {layout}"#) == ["trivy", "image", "--input", "{layout}"])
        #expect(try CommandWords.split(#"sh -c 'echo $HOME; ls' "a \"b\"" c\ d"#) == ["sh", "-c", "echo $HOME; ls", #"a "b""#, "c d"])
        #expect(try CommandWords.split("  ") == [])
        #expect(throws: ImageError.self) { try CommandWords.split("'open") }
    }
}
