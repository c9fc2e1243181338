import Foundation
import Testing
@testable import Runner
import TestSupport

/// The archive's parts (docs/ARCHITECTURE.md §10): bundles that read back or say
/// why not, index lines held to their shape (main is anyone's to push), the
/// finished set that spans the tree and the archive.
@Suite(.unit) struct ArchiveTests {
    @Test func bundlesReadBackMemberForMemberAndTarReadsThemToo() throws {
        let members: [(path: String, bytes: [UInt8])] = [
            ("tasks/completed/w1-a.json", Array("{\"task_id\":\"a\"}\n".utf8)),
            ("tasks/completed/w1-a.json.log", Array(repeating: 0x41, count: 70_000)),
            ("tasks/failed/w2-" + String(repeating: "b", count: 120) + ".json", []),  // over ustar's 100 bytes: a prefix
        ]
        let bundle = try ArchiveBundle.write(members, modified: 1_780_000_000)
        #expect(bundle.count < 10_000, "compressed: \(bundle.count) bytes")
        let back = try ArchiveBundle.read(bundle) { _ in true }
        #expect(back.count == 3)
        for member in members { #expect(back[member.path] == member.bytes, "\(member.path)") }
        let one = try ArchiveBundle.read(bundle) { $0.hasSuffix(".log") }
        #expect(Array(one.keys) == ["tasks/completed/w1-a.json.log"])
        // GNU tar agrees.
        let dir = try TempDir.make(prefix: "dgrid-bundle").path
        try Data(bundle).write(to: URL(fileURLWithPath: dir + "/b.tar.gz"))
        let listed = try ProcessRunner.run("/bin/tar", ["tzf", dir + "/b.tar.gz"])
        #expect(listed.status == 0 && listed.stdout.split(separator: "\n").map(String.init) == members.map(\.path), "\(listed.stdout)\(listed.stderr)")
    }

    @Test func aDamagedBundleIsAFailureNeverAShorterAnswer() throws {
        let bundle = try ArchiveBundle.write([("a.json", Array(repeating: 7, count: 5000)), ("a.json.log", Array(repeating: 9, count: 5000))], modified: 0)
        for broken in [Array(bundle.prefix(bundle.count / 2)), [0x1f, 0x8b, 0x08, 0x00] + [UInt8](repeating: 0x5a, count: 600), Array("not a bundle".utf8), []] {
            #expect(throws: ArchiveBundle.Failure.self) { _ = try ArchiveBundle.read(broken) { _ in true } }
        }
    }

    @Test func indexLinesAreHeldToTheirShape() {
        let good = ArchiveEntry(taskID: "job-7", status: .skipped, exitCode: 125, finishedAt: "2026-11-01T10:00:00Z", nodeID: "w1",
                                bundle: "archive/bundles/2026-11/2026-11-01-1.tar.gz", recordPath: "tasks/failed/w1-job-7.json")
        #expect(ArchiveEntry.parse(line: good.line) == good)
        #expect(good.folderStatus == .failed)
        let hostile = [
            "job-7\tcompleted\t0\tT\tw1\t/etc/passwd\ttasks/completed/w1-job-7.json",  // a bundle outside archive/bundles/
            "job-7\tcompleted\t0\tT\tw1\tarchive/bundles/2026-11/../../x.tar.gz\ttasks/completed/w1-job-7.json",
            "job-7\tcompleted\t0\tT\tw1\tarchive/bundles/2026-11/2026-11-01-1.tar.gz\ttasks/completed/w1-other.json",  // another task's record
            "../x\tcompleted\t0\tT\tw1\tarchive/bundles/2026-11/2026-11-01-1.tar.gz\ttasks/completed/w1-../x.json",
            "job-7\tdone\t0\tT\tw1\tarchive/bundles/2026-11/2026-11-01-1.tar.gz\ttasks/completed/w1-job-7.json",  // no such status
            "job-7\tcompleted\tzero\tT\tw1\tarchive/bundles/2026-11/2026-11-01-1.tar.gz\ttasks/completed/w1-job-7.json",
            "job-7\tcompleted\t0\tT\tw1\tarchive/bundles/2026-11/2026-11-01-1.tar.gz",  // a field short
            "job-7\tcompleted\t0\ta b\tw1\tarchive/bundles/2026-11/2026-11-01-1.tar.gz\ttasks/completed/w1-job-7.json",  // control/space in time
        ]
        for line in hostile { #expect(ArchiveEntry.parse(line: line) == nil, "\(line)") }
        // A shard: first line of an id wins, bad lines are skipped, text is sorted by id.
        var other = good
        other.taskID = "a"
        other.recordPath = "tasks/failed/w1-a.json"
        let text = ArchiveEntry.shardText([good, other])
        #expect(String(decoding: text, as: UTF8.self).hasPrefix("a\t"))
        let parsed = ArchiveEntry.parseShard(text + Array("garbage\n".utf8) + Array((good.line.replacingOccurrences(of: "125", with: "1") + "\n").utf8))
        #expect(parsed.count == 2 && parsed["job-7"]?.exitCode == 125)
        // One id asked of a shard (the fold's question): the same answer as the whole parse —
        // a damaged line of the id first is passed over, a longer id sharing the prefix is not
        // it, and the last line needs no newline.
        var longer = good
        longer.taskID = "job-77"
        longer.recordPath = "tasks/failed/w1-job-77.json"
        let asked = ArchiveShard(Array((longer.line + "\n" + good.line.replacingOccurrences(of: "skipped", with: "done") + "\n" + good.line).utf8))
        #expect(asked.entry("job-7") == good)
        #expect(asked.entry("job-77") == longer)
        #expect(asked.entry("job") == nil && asked.entry("job-777") == nil)
        #expect(ArchiveShard([]).entry("job-7") == nil && ArchiveShard(Array("\n\n".utf8)).entry("job-7") == nil)
    }

    @Test func layoutShardsAreStableAndPathsChecked() {
        // sha256("t1") begins 62: any implementation finds the same shard.
        #expect(ArchiveLayout.shard(of: "t1") == "62")
        #expect(ArchiveLayout.indexPath(shard: "62") == "archive/index/62.tsv")
        #expect(ArchiveLayout.shard(ofIndexPath: "archive/index/62.tsv") == "62")
        for path in ["archive/index/6.tsv", "archive/index/G2.tsv", "archive/index/62.txt", "archive/62.tsv", "archive/index/sub/62.tsv"] {
            #expect(ArchiveLayout.shard(ofIndexPath: path) == nil, "\(path)")
        }
        #expect(ArchiveLayout.bundlePath(day: "2026-11-27", number: 2) == "archive/bundles/2026-11/2026-11-27-2.tar.gz")
        #expect(ArchiveLayout.isBundlePath("archive/bundles/2026-11/2026-11-27-2.tar.gz"))
        #expect(!ArchiveLayout.isBundlePath("archive/bundles/2026-11/x/2026-11-27-2.tar.gz"))
        #expect(!ArchiveLayout.isBundlePath("tasks/completed/w1-a.json"))
    }

    @Test func finishedTasksSpanTheTreeAndTheArchiveReadingOneShardPerQuestion() {
        let entry = ArchiveEntry(taskID: "old", status: .completed, exitCode: 0, finishedAt: "2026-01-01T00:00:00Z", nodeID: "w1",
                                 bundle: "archive/bundles/2026-01/2026-01-01-1.tar.gz", recordPath: "tasks/completed/w1-old.json")
        let blob = GitOID(hex: String(repeating: "b", count: 40))!
        let shard = ArchiveLayout.shard(of: "old")
        final class Reads: @unchecked Sendable { var count = 0 }
        let reads = Reads()
        let catalog = ArchiveCatalog(shards: [shard: blob]) { _ in
            reads.count += 1
            return ArchiveShard(Array((entry.line + "\n").utf8))
        }
        let files = [ArchiveLayout.indexPath(shard: shard): blob, "tasks/completed/w1-new.json": blob, "tasks/queue/old.json": blob,
                     "tasks/queue/fresh.json": blob]
        let snapshot = GridSnapshot(mainTip: blob, files: files, claims: [:], results: [:], nodes: [:],
                                    index: GridSnapshot.MainIndex(files: files, archive: catalog))
        #expect(snapshot.finishedTaskIDs.contains("old") && snapshot.finishedTaskIDs.contains("new"))
        #expect(!snapshot.finishedTaskIDs.contains("fresh"))
        #expect(snapshot.finishedStatus(of: "old") == .completed)
        #expect(snapshot.archived("old") == entry)
        // An archived task's queue file is a replay: set aside, never queued.
        #expect(snapshot.queue.map(\.taskID) == ["fresh"])
        #expect(snapshot.unplaced.first { $0.path == "tasks/queue/old.json" }?.reason.contains("a replay") == true)
        // Ids in other shards never read this one.
        let before = reads.count
        for id in ["x1", "x2", "x3"] where ArchiveLayout.shard(of: id) != shard { _ = snapshot.finishedTaskIDs.contains(id) }
        #expect(reads.count == before)
    }

    @Test func agesCursorsAndHistoryStamps() {
        #expect(AgeText.seconds("7d") == 604_800 && AgeText.seconds("90s") == 90 && AgeText.seconds("2w") == 1_209_600)
        for bad in ["7", "d", "-1d", "1.5h", "7 d", "", "99999999999999999999d"] { #expect(AgeText.seconds(bad) == nil, "\(bad)") }
        let cursor = ResultListing.Cursor("2026-12-01T10:00:00Z/job-7")
        #expect(cursor?.taskID == "job-7" && cursor?.text == "2026-12-01T10:00:00Z/job-7")
        for bad in ["job-7", "yesterday/job-7", "2026-12-01T10:00:00Z/../x"] { #expect(ResultListing.Cursor(bad) == nil, "\(bad)") }
        let date = ISOTime.parse("2026-12-04T10:15:00Z")!
        #expect(GridCompaction.stamp(date) == "20261204T101500Z")
        #expect(GridCompaction.lastCompaction(["refs/dgrid-history/main-20261204T101500Z", "refs/dgrid-history/main-20261201T000000Z-2",
                                                "refs/heads/main", "refs/dgrid-history/main-garbage"]) == date)
    }
}
