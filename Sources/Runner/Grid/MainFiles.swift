/// Main's files, path → blob (`GridSnapshot.files`). The folders finished tasks
/// fold into hold nearly every file of a long-lived grid: they stay their trees'
/// entries (`FolderEntries`), looked up by name, and become paths only for a
/// reader that walks every file (`paths`). docs/ARCHITECTURE.md §10.
struct MainFiles: Sendable {
    /// Kept as entries: the blobs directly in these (a subtree a writer put inside one is listed as paths).
    static let entryFolders = GridSnapshot.finishedDirectories + [GridSnapshot.rejectedDirectory]

    /// Every file not directly in one of `entryFolders`.
    let others: [String: GitOID]
    /// Folder (with its '/') → its blobs.
    let folders: [String: FolderEntries]

    init(listing: TreeListing) {
        others = listing.files
        folders = listing.folders.filter { Self.entryFolders.contains($0.key) }
        assert(listing.folders.count == folders.count, "listed as entries a folder MainFiles does not look in")
    }

    /// From paths (tests, and trees listed whole): those directly in an entry folder become its entries.
    init(_ files: [String: GitOID]) {
        var others: [String: GitOID] = [:], folders: [String: FolderEntries] = [:]
        for (path, blob) in files {
            if let (folder, name) = Self.entry(path) {
                folders[folder, default: FolderEntries()].append(name: String(name), id: blob)
            } else {
                others[path] = blob
            }
        }
        for folder in folders.keys { folders[folder]!.finish() }
        self.others = others
        self.folders = folders
    }

    static let empty = MainFiles([:])

    subscript(path: String) -> GitOID? {
        if let (folder, name) = Self.entry(path) { return folders[folder]?.id(named: name) }
        return others[path]
    }

    /// Every path, made here: for readers that walk all of main (status, reputation, archival).
    var paths: [String] {
        var all = Array(others.keys)
        for (folder, entries) in folders {
            all.reserveCapacity(all.count + entries.count)
            for index in 0..<entries.count { all.append(folder + entries.name(index)) }
        }
        return all
    }

    var count: Int { folders.values.reduce(others.count) { $0 + $1.count } }

    /// The entry folder a path is directly in, and its name there ("tasks/completed/", "x.json");
    /// nil for any other path. Prefixes compared, nothing allocated: every lookup of main asks.
    private static func entry(_ path: String) -> (folder: String, name: Substring)? {
        // Bytes, as the listing split them (a name may begin with a combining mark).
        for folder in entryFolders where path.utf8.starts(with: folder.utf8) {
            let name = Substring(path.utf8.dropFirst(folder.utf8.count))
            return name.utf8.contains(UInt8(ascii: "/")) ? nil : (folder, name)
        }
        return nil
    }
}
