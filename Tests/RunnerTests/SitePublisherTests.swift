import Foundation
import Synchronization
import Testing
@testable import Runner
import TestSupport

/// `SitePublisher` (docs/ARCHITECTURE.md §12): a site goes in whole or not at
/// all, a directory of someone else's files is never replaced, and a reader of
/// the directory never finds it missing or a file half written.
@Suite("Dashboard site: published in one step", .unit)
struct SitePublisherTests {
    private func files(_ stamp: String, size: Int = 100) -> [(name: String, bytes: [UInt8])] {
        [("index.html", Array((String(repeating: "x", count: size) + "<!-- \(stamp) -->\n").utf8)), ("dashboard.json", Array("{\"stamp\":\"\(stamp)\"}\n".utf8))]
    }

    private func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    private func entries(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func aNewSiteThenAReplacementLeaveNothingBeside() throws {
        let parent = try TempDir.make(prefix: "dgrid-site").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let site = parent + "/site"
        try SitePublisher.publish(files("one"), at: site)
        #expect(entries(site) == [".dgrid-dashboard", "dashboard.json", "index.html"])
        #expect(read(site + "/dashboard.json") == "{\"stamp\":\"one\"}\n")
        var info = stat()
        #expect(stat(site + "/index.html", &info) == 0 && info.st_mode & 0o777 == 0o644)
        #expect(stat(site, &info) == 0 && info.st_mode & 0o777 == 0o755)
        let firstInode = info.st_ino

        try SitePublisher.publish(files("two"), at: site)
        #expect(read(site + "/dashboard.json") == "{\"stamp\":\"two\"}\n")
        #expect(stat(site, &info) == 0 && info.st_ino != firstInode, "a new directory took the old one's place")
        #expect(entries(parent) == ["site"], "no staging or old tree left beside it")
    }

    @Test func anEmptyDirectoryIsTakenAndAForeignOneRefusedUntouched() throws {
        let parent = try TempDir.make(prefix: "dgrid-site").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        try FileManager.default.createDirectory(atPath: parent + "/empty", withIntermediateDirectories: false)
        try SitePublisher.publish(files("e"), at: parent + "/empty/")
        #expect(read(parent + "/empty/dashboard.json") == "{\"stamp\":\"e\"}\n")

        let home = parent + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: false)
        try Data("mine\n".utf8).write(to: URL(fileURLWithPath: home + "/notes.txt"))
        #expect(throws: SitePublisher.Failure.self) { try SitePublisher.publish(files("x"), at: home) }
        do {
            try SitePublisher.publish(files("x"), at: home)
        } catch {
            #expect(error.description == "\(home) holds files dgrid did not write (no .dgrid-dashboard in it): give a new or empty directory, since the site replaces it whole")
        }
        #expect(entries(home) == ["notes.txt"] && read(home + "/notes.txt") == "mine\n")

        try Data().write(to: URL(fileURLWithPath: parent + "/file"))
        #expect(symlink(home, parent + "/link") == 0)
        for path in [parent + "/file", parent + "/link", parent + "/missing/site", "/"] {
            #expect(throws: SitePublisher.Failure.self, "\(path)") { try SitePublisher.publish(files("x"), at: path) }
        }
        #expect(entries(home) == ["notes.txt"])
        #expect(entries(parent).allSatisfy { !$0.contains(".dgrid-new-") }, "\(entries(parent))")
    }

    @Test func stagingTreesOfADeadBuildAreSweptAndALiveOnesKept() throws {
        let parent = try TempDir.make(prefix: "dgrid-site").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let dead = Int32.max - 7  // above any pid_max: no such process
        let stale = parent + "/.site.dgrid-new-\(dead)-abc"
        let live = parent + "/.site.dgrid-new-1-def"  // init is alive
        for dir in [stale, live] { try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true) }
        try SitePublisher.publish(files("s"), at: parent + "/site")
        #expect(entries(parent) == [".site.dgrid-new-1-def", "site"])
    }

    @Test func aReaderNeverFindsTheSiteMissingOrAFileHalfWritten() throws {
        let parent = try TempDir.make(prefix: "dgrid-site").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let site = parent + "/site"
        try SitePublisher.publish(files("0", size: 256 << 10), at: site)
        let stop = Atomic(false)
        let problems = Mutex<[String]>([])
        let reads = Atomic(0)
        let reader = Thread {
            while !stop.load(ordering: .relaxed) {
                // As a web server answers a request: the path resolved anew each time.
                guard let page = FileManager.default.contents(atPath: site + "/index.html") else {
                    problems.withLock { $0.append("index.html missing") }
                    continue
                }
                if page.count < 256 << 10 || !page.suffix(4).elementsEqual(Array("-->\n".utf8)) {
                    problems.withLock { $0.append("index.html of \(page.count) bytes, not ending as written") }
                }
                reads.add(1, ordering: .relaxed)
            }
        }
        reader.start()
        for round in 1...40 { try SitePublisher.publish(files("\(round)", size: 256 << 10), at: site) }
        stop.store(true, ordering: .relaxed)
        while !reader.isFinished { usleep(1_000) }
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0.prefix(5) })")
        #expect(reads.load(ordering: .relaxed) > 40, "the reader read while sites were swapped")
        #expect(read(site + "/dashboard.json") == "{\"stamp\":\"40\"}\n")
        #expect(entries(parent) == ["site"])
    }
}
