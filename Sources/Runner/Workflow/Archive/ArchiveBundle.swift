import CArchive
import CZlib
import Glibc

/// A bundle of archived task files (docs/ARCHITECTURE.md §10): a gzip-compressed
/// tar (ustar), built and read in memory, so an operator reads
/// one with `git show main:archive/bundles/… | tar tz`. Members keep the paths
/// they had on main (`tasks/completed/<node>-<id>.json`, its `.log`, its
/// signatures). Reading is bounded and never touches the disk.
enum ArchiveBundle {
    /// Why a bundle could not be written or read, in words.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// One member's bytes at most (a record is ≤ 4 MiB, a task file smaller).
    static let memberLimit = 8 << 20
    static let maxMembers = 200_000
    /// All members together at most, inflated: a small bundle that inflates to
    /// gigabytes (a writer's bomb) is refused rather than read to its end.
    static let maxInflated = 2 << 30

    /// The tar.gz of `members` (path, bytes), in the order given. Written here
    /// (ustar headers, zlib's gzip) rather than with libarchive's writer: linked
    /// statically, that one drags in every write format's table and with them
    /// xar, 7-zip, xz, bzip2 and libxml2. Reading (below) is libarchive's.
    static func write(_ members: [(path: String, bytes: [UInt8])], modified: Int) throws(Failure) -> [UInt8] {
        var tar: [UInt8] = []
        tar.reserveCapacity(members.reduce(1024) { $0 + 512 + ($1.bytes.count + 511) / 512 * 512 })
        for member in members {
            tar += header(member.path, size: member.bytes.count, modified: modified)
            tar += member.bytes
            tar += [UInt8](repeating: 0, count: (512 - member.bytes.count % 512) % 512)
        }
        tar += [UInt8](repeating: 0, count: 1024)  // two zero blocks end the archive
        return try gzip(tar)
    }

    /// The header blocks of a regular file: ustar's, after a GNU long-name
    /// entry when the path does not fit ustar's 100 + 155 bytes (task ids and
    /// node ids make names past 100 bytes; GNU tar and libarchive read both).
    private static func header(_ path: String, size: Int, modified: Int) -> [UInt8] {
        let name = Array(path.utf8)
        if name.count <= 100 { return block(name: name, prefix: [], size: size, modified: modified, type: 0x30) }
        if let cut = name.indices.last(where: { name[$0] == 0x2F && $0 <= 155 && name.count - $0 - 1 <= 100 }) {
            return block(name: Array(name[(cut + 1)...]), prefix: Array(name[..<cut]), size: size, modified: modified, type: 0x30)
        }
        var long = block(name: Array("././@LongLink".utf8), prefix: [], size: name.count + 1, modified: 0, type: 0x4C)  // 'L'
        long += name + [0]
        long += [UInt8](repeating: 0, count: (512 - (name.count + 1) % 512) % 512)
        return long + block(name: Array(name.prefix(100)), prefix: [], size: size, modified: modified, type: 0x30)
    }

    private static func block(name: [UInt8], prefix: [UInt8], size: Int, modified: Int, type: UInt8) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], at offset: Int) { for (i, byte) in bytes.enumerated() { block[offset + i] = byte } }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(0o644, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)
        put(octal(0, width: 8), at: 116)
        put(octal(size, width: 12), at: 124)
        put(octal(max(0, modified), width: 12), at: 136)
        put(Array("        ".utf8), at: 148)  // the checksum counts its own field as spaces
        block[156] = type
        put(Array("ustar".utf8) + [0] + Array("00".utf8), at: 257)
        put(prefix, at: 345)
        let sum = block.reduce(0) { $0 + Int($1) }
        put(octal(sum, width: 7) + [0x20], at: 148)
        return block
    }

    /// `bytes` as one gzip member (zlib, default level).
    private static func gzip(_ bytes: [UInt8]) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16: a gzip header and trailer, not zlib's.
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "zlib: cannot start compressing")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        let status = bytes.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out -> Int32 in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(out.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw Failure(description: "zlib: compressing stopped (\(status))") }
        return Array(output.prefix(Int(stream.total_out)))
    }

    /// The members of `bundle` whose paths `wanted` accepts, by path. A bundle
    /// that does not decompress, is not a tar, or ends early is a failure that
    /// says so: never a partial answer taken for the whole.
    static func read(_ bundle: [UInt8], wanted: (String) -> Bool) throws(Failure) -> [String: [UInt8]] {
        guard let archive = archive_read_new() else { throw Failure(description: "libarchive: out of memory") }
        defer { archive_read_free(archive) }
        archive_read_support_format_tar(archive)
        archive_read_support_filter_gzip(archive)
        let outcome = bundle.withUnsafeBytes { (bytes) -> Result<[String: [UInt8]], Failure> in
            Result { () throws(Failure) in try members(bytes) }
        }
        return try outcome.get()
        func members(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> [String: [UInt8]] {
            guard archive_read_open_memory(archive, bytes.baseAddress, bytes.count) == ARCHIVE_OK else {
                throw Failure(description: "not a tar.gz (\(errorText(archive)))")
            }
            var found: [String: [UInt8]] = [:]
            var count = 0
            var inflated = 0
            while true {
                var entry: OpaquePointer?
                let status = archive_read_next_header(archive, &entry)
                if status == ARCHIVE_EOF { return found }
                guard status == ARCHIVE_OK, let entry, let name = archive_entry_pathname(entry) else {
                    throw Failure(description: "unreadable after \(count) members (\(errorText(archive)))")
                }
                count += 1
                guard count <= maxMembers else { throw Failure(description: "more than \(maxMembers) members") }
                let path = String(cString: name)
                // Every member's data is read, wanted or not: a truncated or damaged
                // stream shows here rather than passing for a shorter bundle.
                let size = archive_entry_size(entry)
                guard size >= 0, size <= memberLimit else { throw Failure(description: "member \(path) is \(size) bytes, over \(memberLimit)") }
                inflated += Int(size)
                guard inflated <= maxInflated else { throw Failure(description: "its members add up to more than \(maxInflated) bytes") }
                var data = [UInt8](repeating: 0, count: Int(size))
                var got = 0
                while got < data.count {
                    let n = data.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress! + got, $0.count - got) }
                    guard n > 0 else { throw Failure(description: "member \(path) ends after \(got) of \(size) bytes (\(errorText(archive)))") }
                    got += n
                }
                if wanted(path) { found[path] = data }
            }
        }
    }

    private static func errorText(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "no detail"
    }
}

