import Foundation
import Glibc
import Testing
import TestSupport
@testable import SandboxImages
@testable import SandboxSupport

/// The content store: every write hashed while streamed and refused on
/// mismatch (docs/ARCHITECTURE.md §5); a network peer lies about digests, sizes, and ends
/// streams early (docs/THREATS.md, attacker 4).
@Suite(.system) struct ImageContentStoreTests {
    let content = Array("hello, content store\n".utf8)

    private func ingest(_ store: ContentStore, _ bytes: [UInt8], expected: Digest, size: Int64) throws(ImageError) {
        var source = MemorySource(bytes)
        try store.ingest(from: &source, expected: expected, size: size)
    }

    private func leftovers(_ store: ContentStore) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store.directory).filter { $0.hasPrefix(".") }
    }

    @Test func verifiedContentIsStoredUnderItsDigest() throws {
        let store = try ImageFixture.store().content
        let digest = Digest(of: content)
        try ingest(store, content, expected: digest, size: Int64(content.count))
        #expect(store.has(digest))
        #expect(store.size(of: digest) == Int64(content.count))
        #expect(try store.read(digest) == content)
        var info = stat()
        #expect(stat(store.path(for: digest), &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try leftovers(store).isEmpty)
    }

    /// One row per lie; each refused with the digest named and nothing stored.
    @Test(arguments: [
        ("digestMismatch", "other content", 0),  // right size, wrong bytes
        ("tooLong", "", 1),                       // one byte more than declared
        ("truncated", "", -1),                    // stream ends early
    ])
    func liesAreRefusedAndNothingIsStored(expectedCase: String, replacement: String, sizeDelta: Int) throws {
        let store = try ImageFixture.store().content
        let digest = Digest(of: content)
        var bytes = content
        if !replacement.isEmpty { bytes = Array(replacement.utf8) + Array(repeating: 0x20, count: content.count - replacement.utf8.count) }
        if sizeDelta > 0 { bytes.append(0x0a) }
        if sizeDelta < 0 { bytes.removeLast(5) }
        do {
            try ingest(store, bytes, expected: digest, size: Int64(content.count))
            Issue.record("ingest accepted \(expectedCase)")
        } catch {
            #expect(error.caseName == expectedCase)
            #expect(error.description.contains(digest.description), "error must name the digest: \(error)")
        }
        #expect(!store.has(digest))
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).isEmpty)
    }

    /// The source is read at most size + 1 bytes: an endless body cannot fill the disk.
    @Test func anEndlessStreamStopsOneByteAfterTheDeclaredSize() throws {
        struct Endless: ByteSource {
            var served = 0
            let sourceDescription = "endless"
            mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageError) -> Int {
                buffer.initializeMemory(as: UInt8.self, repeating: 0x61)
                served += buffer.count
                return buffer.count
            }
        }
        let store = try ImageFixture.store().content
        var source = Endless()
        let digest = Digest(of: Array(repeating: UInt8(0x61), count: 100))
        #expect(throws: ImageError.tooLong(digest: digest, expectedSize: 100)) {
            try store.ingest(from: &source, expected: digest, size: 100)
        }
        #expect(source.served == 101)
    }

    @Test(arguments: [
        "sha256:" + String(repeating: "A", count: 64),  // uppercase
        "sha256:" + String(repeating: "a", count: 63),  // short
        "sha256:" + String(repeating: "a", count: 65),  // long
        "sha512:" + String(repeating: "a", count: 128), // other algorithm
        "sha256:../../../../etc/passwd",
        String(repeating: "a", count: 64),              // no algorithm
        "",
    ])
    func malformedDigestsNeverReachTheStore(text: String) {
        #expect(throws: DigestError.self) { try Digest(parsing: text) }
    }

    @Test func concurrentIngestsOfTheSameBlobAllSucceed() async throws {
        let store = try ImageFixture.store().content
        let bytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let digest = Digest(of: bytes)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var source = MemorySource(bytes)
                    try store.ingest(from: &source, expected: digest, size: Int64(bytes.count))
                }
            }
            try await group.waitForAll()
        }
        #expect(try store.rehash(name: digest.hex) == digest)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory) == [digest.hex])
    }

    @Test func readRehashesAndRefusesACorruptedBlob() throws {
        let store = try ImageFixture.store().content
        let digest = Digest(of: content)
        try ingest(store, content, expected: digest, size: Int64(content.count))
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: store.path(for: digest)))
        #expect(throws: ImageError.digestMismatch(expected: digest, actual: Digest(of: Array("tampered".utf8)))) {
            try store.read(digest)
        }
    }

    @Test func readRefusesDocumentsOverTheLimit() throws {
        let store = try ImageFixture.store().content
        let big = [UInt8](repeating: 0x20, count: 1000)
        let digest = try store.ingest(bytes: big)
        #expect(throws: ImageError.self) { try store.read(digest, limit: 999) }
        #expect(try store.read(digest, limit: 1000).count == 1000)
    }

    @Test func verifyQuarantinesCorruptBlobsAndKeepsGoodOnes() throws {
        let store = try ImageFixture.store().content
        let good = try store.ingest(bytes: Array("good".utf8))
        let bad = try store.ingest(bytes: Array("bad".utf8))
        try Data("rotten".utf8).write(to: URL(fileURLWithPath: store.path(for: bad)))
        try Data("junk".utf8).write(to: URL(fileURLWithPath: store.directory + "/not-a-digest"))

        let report = try store.verifyAll()
        #expect(report.checked == 3)
        #expect(Set(report.corrupt.map(\.name)) == [bad.hex, "not-a-digest"])
        #expect(store.has(good))
        #expect(!store.has(bad))
        #expect(try String(contentsOfFile: store.quarantineDirectory + "/" + bad.hex, encoding: .utf8) == "rotten")
        #expect(try store.verifyAll().corrupt.isEmpty)
    }

    @Test func abandonedTemporariesAreRemovedButLiveOnesKept() throws {
        let store = try ImageFixture.store().content
        let dead = store.directory + "/.ingest-dead"
        let live = store.directory + "/.ingest-live"
        _ = FileManager.default.createFile(atPath: dead, contents: Data("x".utf8))
        _ = FileManager.default.createFile(atPath: live, contents: Data("y".utf8))
        let fd = open(live, O_RDONLY)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX) == 0)
        #expect(store.removeAbandonedTemporaries() == 1)
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
