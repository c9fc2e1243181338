import Foundation
import Testing
import TestSupport

/// Artifacts end to end (docs/ARCHITECTURE.md §10): files under `/output` listed
/// in the record by digest; small ones kept in Git, on main after the fold;
/// hostile `/output` contents (symlinks out, a FIFO, a device, 100,000 empty
/// files) neither followed nor flooding the record; `dgrid result --download`
/// verifies every digest; a dependent reads them under `/inputs`.
@Suite(.system, .serialized) struct GridArtifactCLITests {
    private func record(_ repo: String, _ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
    }

    @Test func outputFilesBecomeVerifiedArtifactsAndHostileOnesAreNotFollowed() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-artifacts").path
        try GridFixture.taskFile(tasks, "make", [
            "mkdir -p /output/sub /output/zmany", "echo 'the report' > /output/report.txt",
            "head -c 614400 /dev/zero > /output/big.bin", "echo deeper > /output/sub/deeper.txt",
            "ln -s /etc/shadow /output/shadow", "ln -s ../../ /output/up", "mkfifo /output/pipe",
            "mknod /output/null c 1 3 2>/dev/null || echo no-mknod", "cd /output/zmany && seq 1 100000 | xargs touch", "echo made",
        ].joined(separator: "; "), timeout: 120)
        try GridFixture.taskFile(tasks, "use", "cat /inputs/make/artifacts/report.txt; ls /inputs/make/artifacts", extra: #","depends_on":["make"]"#)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wa", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")

        let made = try record(repo, "tasks/completed/wa-make.json.log")
        #expect(made["stdout"] as? String == "no-mknod\nmade\n", "\(made)")
        let artifacts = made["artifacts"] as? [[String: Any]] ?? []
        #expect(artifacts.count == 1_000, "at most 1,000 listed: \(artifacts.count)")
        let report = try #require(artifacts.first { $0["path"] as? String == "report.txt" }, "\(artifacts.prefix(3))")
        let digest = try GridCheckpointCLITests.sha256("the report\n")
        #expect(report["digest"] as? String == "sha256:" + digest && report["size"] as? Int == 11)
        #expect(report["store"] as? String == "git" && report["location"] as? String == "artifacts/sha256/\(digest)")
        #expect(report["media_type"] as? String == "text/plain")
        #expect(!artifacts.contains { ["shadow", "up", "pipe", "null"].contains($0["path"] as? String ?? "") }, "no link, FIFO or device listed")
        let skipped = made["artifacts_skipped"] as? [String: Int] ?? [:]
        #expect(skipped["symlink"] == 2 && skipped["special file"] == 1, "\(skipped)")
        #expect((skipped["past 1000 files"] ?? 0) + (skipped["past 100000 entries"] ?? 0) > 99_000, "\(skipped)")
        #expect(artifacts.contains { $0["path"] as? String == "big.bin" && $0["store"] as? String == "none" })
        // Folded: the Git store's artifact stays on main, content-addressed; the result ref is gone.
        #expect(try GridFixture.show(repo, "artifacts/sha256/\(digest)") == "the report\n")
        #expect(try GridFixture.refs(repo, "refs/dgrid/results").isEmpty)
        // A dependent reads it under /inputs.
        let use = try record(repo, "tasks/completed/wa-use.json.log")
        #expect((use["stdout"] as? String ?? "").hasPrefix("the report\n"), "\(use)")
        #expect((use["stdout"] as? String ?? "").contains("report.txt\n"), "\(use)")

        // Download: every digest checked; what was not kept is one line each; exit 1 then.
        let out = try TempDir.make(prefix: "dgrid-download").path
        let download = try home.dgrid("result", "--repo", url, "make", "--download", out)
        #expect(download.status == 1, "big.bin was not kept: \(download.stderr)")
        #expect(download.stderr.contains("artifact \"big.bin\": missing: not kept"), "\(download.stderr)")
        #expect(try String(contentsOfFile: out + "/report.txt", encoding: .utf8) == "the report\n")
        #expect(!FileManager.default.fileExists(atPath: out + "/big.bin") && !FileManager.default.fileExists(atPath: out + "/shadow"))
        #expect(try String(contentsOfFile: out + "/sub/deeper.txt", encoding: .utf8) == "deeper\n")
        // A writer swaps the bytes on main: refused as corrupt, never written.
        let forged = tasks + "/forged"
        try Data("forged!\n".utf8).write(to: URL(fileURLWithPath: forged))
        try GridFixture.push(repo, [(forged, "artifacts/sha256/\(digest)")])
        let again = try TempDir.make(prefix: "dgrid-download-forged").path
        let corrupt = try home.dgrid("result", "--repo", url, "make", "--download", again)
        #expect(corrupt.status == 1 && corrupt.stderr.contains("artifact \"report.txt\": corrupt"), "\(corrupt.stderr)")
        #expect(!FileManager.default.fileExists(atPath: again + "/report.txt"))
        #expect(try home.dgrid("result", "--repo", url, "make", "--download", "/nonexistent-dir").stderr.contains("no such directory"))
    }

    /// On a one-host grid `artifact_dir` keeps what Git does not: a download
    /// reads it from there, verified; a file swapped in the directory is refused.
    @Test func aDirectoryStoreKeepsLargeArtifactsAndDownloadsVerifyThem() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let store = try TempDir.make(prefix: "dgrid-artifact-store").path
        let tasks = try TempDir.make(prefix: "dgrid-artifacts-dir").path
        try GridFixture.taskFile(tasks, "large", "head -c 2097152 /dev/urandom > /output/large.bin; sha256sum /output/large.bin | cut -d' ' -f1")
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "wd", "--once", "--set", "artifact_dir=\(store)")
        #expect(worker.status == 0, "\(worker.stderr)")
        let made = try record(repo, "tasks/completed/wd-large.json.log")
        let hex = (made["stdout"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let artifact = try #require((made["artifacts"] as? [[String: Any]])?.first)
        #expect(artifact["store"] as? String == "directory" && artifact["location"] as? String == "\(store)/sha256/\(hex)", "\(artifact)")
        #expect(artifact["digest"] as? String == "sha256:\(hex)" && artifact["size"] as? Int == 2_097_152)
        #expect(!(try GridFixture.mainFiles(repo)).contains { $0.hasPrefix("artifacts/") }, "nothing of it in Git")
        let out = try TempDir.make(prefix: "dgrid-download-dir").path
        #expect(try home.dgrid("result", "--repo", url, "large", "--download", out).status == 0)
        #expect(try GridCheckpointCLITests.sha256(String(decoding: try Data(contentsOf: URL(fileURLWithPath: out + "/large.bin")), as: UTF8.self)) == hex
                || (try ProcessRunner.run("/usr/bin/sha256sum", [out + "/large.bin"]).stdout.hasPrefix(hex)))
        try Data("swapped".utf8).write(to: URL(fileURLWithPath: "\(store)/sha256/\(hex)"))
        let swapped = try home.dgrid("result", "--repo", url, "large", "--download", try TempDir.make(prefix: "dgrid-download-swapped").path)
        #expect(swapped.status == 1 && swapped.stderr.contains("artifact \"large.bin\": corrupt"), "\(swapped.stderr)")
        // A writer rewrites the record to point the artifact at a device: refused by its shape, never read.
        let forged = tasks + "/forged.json.log"
        let text = try GridFixture.show(repo, "tasks/completed/wd-large.json.log")
            .replacingOccurrences(of: "\(store)/sha256/\(hex)", with: "/dev/zero")
        try Data(text.utf8).write(to: URL(fileURLWithPath: forged))
        try GridFixture.push(repo, [(forged, "tasks/completed/wd-large.json.log")])
        let device = try home.dgrid("result", "--repo", url, "large", "--download", try TempDir.make(prefix: "dgrid-download-device").path)
        #expect(device.status == 1 && device.stderr.contains("artifact \"large.bin\": corrupt") && device.stderr.contains("/dev/zero"), "\(device.stderr)")
        let bad = try home.dgrid("worker", "--repo", url, "--node-id", "wd", "--once", "--set", "artifact_dir=relative/dir")
        #expect(bad.status == 78 && bad.stderr.contains("artifact_dir"), "\(bad.stderr)")
    }

    /// Stdout and stderr past the record's cap are kept whole as artifacts:
    /// downloaded beside the outputs, and what a dependent reads as its stdout.
    @Test func outputPastTheRecordsCapIsKeptWholeAsAnArtifact() throws {
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        let home = try GridFixture.workerHome()
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let tasks = try TempDir.make(prefix: "dgrid-streams").path
        try GridFixture.taskFile(tasks, "chatty", "seq 1 20000; seq 1 300000 >&2")
        try GridFixture.taskFile(tasks, "reader", "wc -c < /inputs/chatty/stdout; tail -1 /inputs/chatty/stdout; wc -c < /inputs/chatty/stderr",
                                 extra: #","depends_on":["chatty"]"#)
        #expect(try home.dgrid("submit", "--repo", url, tasks).status == 0)
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "ws", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        let chatty = try record(repo, "tasks/completed/ws-chatty.json.log")
        #expect(chatty["stdout_truncated"] as? Bool == true && chatty["stdout_bytes"] as? Int == 108_894)
        let out = try #require(chatty["stdout_artifact"] as? [String: Any], "\(chatty.keys.sorted())")
        #expect(out["size"] as? Int == 108_894 && out["store"] as? String == "git", "\(out)")
        // 2 MB of stderr: over what Git takes, no artifact_dir: its digest recorded, marked not kept.
        let err = try #require(chatty["stderr_artifact"] as? [String: Any])
        #expect(err["size"] as? Int == chatty["stderr_bytes"] as? Int && err["store"] as? String == "none", "\(err)")
        let reader = try record(repo, "tasks/completed/ws-reader.json.log")
        let lines = (reader["stdout"] as? String ?? "").split(separator: "\n")
        #expect(lines.count == 3 && lines[0] == "108894" && lines[1] == "20000", "the whole stdout under /inputs: \(lines)")
        #expect(Int(lines.last ?? "") ?? 0 == 10 * 1024, "the record's stderr where the whole was not kept: \(lines)")
        let dir = try TempDir.make(prefix: "dgrid-download-streams").path
        let download = try home.dgrid("result", "--repo", url, "chatty", "--download", dir)
        #expect(download.status == 1 && download.stderr.contains("artifact \"dgrid-stderr\": missing: not kept"), "\(download.stderr)")
        let whole = try String(contentsOfFile: dir + "/dgrid-stdout", encoding: .utf8)
        #expect(whole.utf8.count == 108_894 && whole.hasSuffix("19999\n20000\n"))
    }
}
