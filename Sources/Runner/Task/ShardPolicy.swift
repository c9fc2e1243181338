/// Which queue shard a task belongs to. Every worker, on any platform and in any
/// process, must compute the same shard for the same id, so this is FNV-1a 64 over
/// the UTF-8 bytes — never `hashValue`, which Swift seeds per process.
public enum ShardPolicy {
    /// FNV-1a 64 of the id's UTF-8 bytes, mod `count`; 0 when `count <= 1`.
    public static func shard(of taskID: String, count: Int) -> Int {
        guard count > 1 else { return 0 }
        return Int(fnv1a64(taskID.utf8) % UInt64(count))
    }

    static func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
