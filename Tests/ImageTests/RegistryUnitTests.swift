import Foundation
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport
@testable import Registry

/// The registry client's parsing at the edge (docs/THREATS.md, attacker 4, Secrets): challenges,
/// URLs from redirects and realms, the credentials file, names → registries.
@Suite(.unit) struct RegistryUnitTests {
    @Test func bearerChallenge() {
        let c = AuthChallenge.parse(#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#)
        #expect(c?.scheme == "bearer")
        #expect(c?.realm == "https://auth.example/token")
        #expect(c?.parameters["service"] == "registry.example")
        #expect(c?.parameters["scope"] == "repository:a/b:pull")
    }

    @Test func basicChallengeAndEscapes() {
        let c = AuthChallenge.parse(#"Basic realm="a \"quoted\" realm""#)
        #expect(c?.scheme == "basic")
        #expect(c?.realm == #"a "quoted" realm"#)
        #expect(AuthChallenge.parse(#"Bearer realm="unterminated"#) == nil)
        #expect(AuthChallenge.parse("") == nil)
        // A second challenge after the first is ignored, not misparsed.
        let two = AuthChallenge.parse(#"Bearer realm="https://a/t", Basic realm="x""#)
        #expect(two?.realm == "https://a/t")
    }

    @Test func urlsRefuseUserInfoAndOtherSchemes() {
        #expect(RegistryURL("https://user:pw@host/x") == nil)
        #expect(RegistryURL("ftp://host/x") == nil)
        #expect(RegistryURL("file:///etc/passwd") == nil)
        #expect(RegistryURL("https://Host:443/v2/")?.origin == "https://host")
        let base = RegistryURL("https://reg.example/v2/a/blobs/sha256:1")
        #expect(base?.resolve("/other?x=1")?.description == "https://reg.example/other?x=1")
        #expect(base?.resolve("https://cdn.example/b")?.origin == "https://cdn.example")
        #expect(base?.resolve("//cdn.example/b")?.origin == "https://cdn.example")
        #expect(base?.resolve("https://u:p@cdn.example/b") == nil)
    }

    @Test func realmQueryIsEncoded() {
        let url = RegistryURL("https://auth.example/token?x=1")?.appendingQuery([("scope", "repository:a/b:pull"), ("service", "r e")])
        #expect(url?.description == "https://auth.example/token?x=1&scope=repository%3Aa%2Fb%3Apull&service=r%20e")
    }

    @Test func locations() {
        let local = RegistryLocation(repository: "127.0.0.1:5000/dgrid/busybox", insecure: true)
        #expect(local.registry == "127.0.0.1:5000")
        #expect(local.repository == "dgrid/busybox")
        #expect(local.manifestURL("1") == "http://127.0.0.1:5000/v2/dgrid/busybox/manifests/1")
        let hub = RegistryLocation(repository: "busybox", insecure: false)
        #expect(hub.endpoint == "registry-1.docker.io")
        #expect(hub.repository == "library/busybox")
        #expect(RegistryLocation.namesRegistry("localhost/x"))
        #expect(!RegistryLocation.namesRegistry("dgrid/busybox"))
    }

    @Test func configurationFile() throws {
        let auth = Data("alice:pa:ss".utf8).base64EncodedString()
        let json = #"{"auths":{"https://Reg.Example:5000/v1/":{"auth":"\#(auth)"},"other.example":{"username":"bob","password":"pw"}},"insecure-registries":["127.0.0.1:5000"]}"#
        let config = try RegistryConfiguration.parse(Array(json.utf8), path: "/x/config.json")
        #expect(config.credentials(for: "reg.example:5000") == RegistryCredentials(username: "alice", password: "pa:ss"))
        #expect(config.credentials(for: "other.example")?.username == "bob")
        #expect(config.credentials(for: "nobody.example") == nil)
        #expect(config.isInsecure("127.0.0.1:5000"))
        #expect(!config.isInsecure("reg.example:5000"))
        // Never printed.
        let shown = "\(config.credentials(for: "reg.example:5000")!)"
        #expect(!shown.contains("pa:ss"))
        #expect(shown.contains("redacted"))
    }

    /// A credentials file others can read is refused (the secret stays out of
    /// the error); 0600 is read; a file with no credentials may be 0644.
    @Test func credentialsFileMustBePrivate() throws {
        let path = TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-registry-config-\(UUID().uuidString.prefix(8)).json")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let auth = Data("alice:sekrit".utf8).base64EncodedString()
        try Data(#"{"auths":{"reg.example":{"auth":"\#(auth)"}}}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(chmod(path, 0o644) == 0)
        #expect {
            _ = try RegistryConfiguration.read(path)
        } throws: { error in
            let text = "\(error)"
            return text.contains(path) && text.contains("mode 644") && text.contains("chmod 600") && !text.contains("sekrit")
        }
        #expect(chmod(path, 0o600) == 0)
        #expect(try RegistryConfiguration.read(path).credentials(for: "reg.example")?.username == "alice")
        try Data(#"{"insecure-registries":["127.0.0.1:5000"]}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(chmod(path, 0o644) == 0)
        #expect(try RegistryConfiguration.read(path).isInsecure("127.0.0.1:5000"))
    }

    @Test func badConfigurationNamesNoSecret() {
        let json = #"{"auths":{"reg.example":{"auth":"not base64 sekrit!"}}}"#
        #expect {
            _ = try RegistryConfiguration.parse(Array(json.utf8), path: "/x/config.json")
        } throws: { error in
            let text = "\(error)"
            return text.contains("/x/config.json") && !text.contains("sekrit")
        }
    }

    @Test func redaction() throws {
        let config = RegistryConfiguration(auths: ["reg.example": RegistryCredentials(username: "u", password: "hunter22")])
        let client = try RegistryClient(repository: "reg.example/a/b", options: .init(configuration: config))
        defer { client.shutdown() }
        #expect(client.redact("bad password hunter22 given") == "bad password [redacted] given")
    }

    @Test func tagPullIsRefusedBeforeAnything() throws {
        let store = try ImageStore(state: StateDirectory(path: TestCleanup.removeAtExit(NSTemporaryDirectory() + "dgrid-registry-unit-\(UUID().uuidString.prefix(8))")))
        #expect(throws: RegistryError.tagNotAllowed(reference: "127.0.0.1:1/a/b:1")) {
            _ = try ImagePuller(store: store, options: .init(insecure: true)).pull("127.0.0.1:1/a/b:1")
        }
        let digest = "sha256:" + String(repeating: "b", count: 64)
        #expect(throws: RegistryError.image(.notAllowlisted("127.0.0.1:1/a/b@\(digest)"))) {
            _ = try ImagePuller(store: store, options: .init(insecure: true)).pull("127.0.0.1:1/a/b@\(digest)")
        }
    }
}
