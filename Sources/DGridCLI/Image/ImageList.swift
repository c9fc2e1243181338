import ArgumentParser
import Sandbox

struct ImageList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List allowlisted and local images."
    )

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    /// `list --json`: every key always present.
    struct Record: Encodable {
        let name: String
        let digest: String?
        let allowlisted: Bool
        let stored: Bool
        let local_digest: String?
        let added_at: String?
        let approved_by: String?
        let note: String?
        let last_scanned: String?
        let vulnerabilities: ScanSummary?

        enum CodingKeys: String, CodingKey {
            case name, digest, allowlisted, stored, local_digest, added_at, approved_by, note, last_scanned, vulnerabilities
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(digest, forKey: .digest)
            try c.encode(allowlisted, forKey: .allowlisted)
            try c.encode(stored, forKey: .stored)
            try c.encode(local_digest, forKey: .local_digest)
            try c.encode(added_at, forKey: .added_at)
            try c.encode(approved_by, forKey: .approved_by)
            try c.encode(note, forKey: .note)
            try c.encode(last_scanned, forKey: .last_scanned)
            try c.encode(vulnerabilities, forKey: .vulnerabilities)
        }
    }

    func run() throws {
        let rows: [ImageAdmin.Listing]
        do {
            rows = try ImageAdmin(store: ImageCLI.store()).list()
        } catch {
            ImageCLI.fail(error)
        }
        if json {
            let records = rows.map { row in
                Record(name: row.name, digest: row.digest?.description, allowlisted: row.allowlisted, stored: row.stored,
                       local_digest: row.localDigest?.description, added_at: row.entry?.addedAt,
                       approved_by: row.entry?.approvedBy, note: row.entry?.note, last_scanned: row.entry?.lastScanned,
                       vulnerabilities: row.entry?.vulnerabilities)
            }
            print(ImageCLI.json(["images": records]))
            return
        }
        guard !rows.isEmpty else {
            ImageCLI.note("no images: `dgrid image import PATH` brings one in, `dgrid image allow NAME` lets it run")
            return
        }
        let table = rows.map { row -> [String] in
            let allowed: String
            if !row.allowlisted {
                allowed = "no"
            } else if row.digest == nil {
                allowed = "unpinned"
            } else {
                allowed = row.stored ? "yes" : "yes (not stored)"
            }
            var digest = row.digest?.short ?? "-"
            if let local = row.localDigest { digest += " (local \(local.short))" }
            let scanned = row.entry?.lastScanned.map { date in
                "\(date) exit \(row.entry?.vulnerabilities?.exitStatus ?? 0)"
            } ?? "-"
            return [row.name, digest, allowed, row.entry?.approvedBy ?? "-", row.entry?.addedAt ?? "-", scanned]
        }
        print(ImageCLI.table(["NAME", "DIGEST", "ALLOWED", "APPROVED BY", "ADDED", "SCANNED"], table))
    }
}
