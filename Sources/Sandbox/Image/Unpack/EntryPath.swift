import SandboxSupport
/// A failure while handling one entry. The entry loop adds the layer and the
/// entry's name to turn it into an `UnpackError`.
indirect enum EntryFailure: Error {
    case refused(EntryRefusal)
    case limit(UnpackLimit)
    case system(operation: String, errno: Int32)
    /// libarchive failed reading the entry's data; the stream or the tar
    /// reader holds the reason.
    case archive
    /// About a path other than the entry being read (opaque markers are
    /// applied after the last entry).
    case at(entry: String, EntryFailure)
}

/// An entry name (or hardlink target) checked and split into components.
/// The components live in one reusable buffer with '/' replaced by NUL, so
/// each is a C string the *at calls take as is: no allocation per entry once
/// the buffers have grown.
///
/// Empty and "." components are dropped ("./a//b/" is "a/b"); a leading '/'
/// or any ".." is refused rather than stripped, because a layer that needs
/// either was built to escape.
struct EntryPath {
    /// Components, each followed by a NUL.
    private(set) var bytes: [UInt8] = []
    private var starts: [Int] = []

    /// Number of components; 0 means the layer root itself.
    var count: Int { starts.count }

    init() {}

    /// The path a `key(components:)` result names.
    init(key: [UInt8]) {
        bytes = key
        var start = 0
        for (index, byte) in key.enumerated() where byte == 0 {
            starts.append(start)
            start = index + 1
        }
    }

    mutating func parse(_ raw: UnsafeBufferPointer<UInt8>, limits: UnpackLimits) throws(EntryFailure) {
        bytes.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        guard !raw.isEmpty else { throw .refused(.emptyName) }
        guard raw.count <= limits.maxPathBytes else { throw .limit(.pathBytes(limits.maxPathBytes)) }
        guard raw[0] != UInt8(ascii: "/") else { throw .refused(.absoluteName) }
        var start = 0
        while start < raw.count {
            var end = start
            while end < raw.count && raw[end] != UInt8(ascii: "/") { end += 1 }
            let length = end - start
            let dot = UInt8(ascii: ".")
            if length == 2 && raw[start] == dot && raw[start + 1] == dot {
                throw .refused(.leavesLayer)
            }
            if length > 0 && !(length == 1 && raw[start] == dot) {
                guard starts.count < limits.maxPathDepth else { throw .limit(.pathDepth(limits.maxPathDepth)) }
                starts.append(bytes.count)
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: raw[start..<end]))
                bytes.append(0)
            }
            start = end + 1
        }
    }

    /// Calls `body` with component `index` as a C string.
    func withComponent<R, E: Error>(_ index: Int, _ body: (UnsafePointer<CChar>) throws(E) -> R) throws(E) -> R {
        try bytes.withUnsafeBufferPointer { (buffer) throws(E) -> R in
            guard let base = buffer.baseAddress else { preconditionFailure("component of the root path") }
            // UInt8 and CChar share a layout; the component ends at its NUL.
            return try body(UnsafeRawPointer(base + starts[index]).assumingMemoryBound(to: CChar.self))
        }
    }

    /// The bytes of component `index`, without its NUL.
    func component(_ index: Int) -> ArraySlice<UInt8> {
        let end = index + 1 < starts.count ? starts[index + 1] - 1 : bytes.count - 1
        return bytes[starts[index]..<end]
    }

    /// Components 0..<count joined by '/' for messages; "." for the root.
    func display(components count: Int? = nil) -> String {
        let n = count ?? starts.count
        guard n > 0 else { return "." }
        let end = n < starts.count ? starts[n] - 1 : bytes.count - 1
        return UntrustedText.shown(bytes: bytes[0..<end].map { $0 == 0 ? UInt8(ascii: "/") : $0 }, limit: 4096)
    }

    /// The first `count` components in `bytes`' form: a dictionary key that
    /// equals `bytes` of the path naming just them.
    func key(components count: Int) -> [UInt8] {
        Array(bytes[0..<(count < starts.count ? starts[count] : bytes.count)])
    }

    /// True when the last component starts with `prefix`.
    func lastComponentHasPrefix(_ prefix: StaticString) -> Bool {
        guard let last = starts.last else { return false }
        let length = prefix.utf8CodeUnitCount
        return bytes.count - 1 - last >= length
            && prefix.withUTF8Buffer { bytes[last..<(last + length)].elementsEqual($0) }
    }

    /// True when both name the same path.
    func sameComponents(as other: EntryPath) -> Bool {
        bytes == other.bytes
    }
}
