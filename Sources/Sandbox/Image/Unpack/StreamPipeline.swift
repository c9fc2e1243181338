import Glibc
import SandboxSupport

/// Runs a `DecompressedStream` (inflate, hash, count) on a thread of its own,
/// so decompression and hashing overlap with parsing and writing files: a
/// gzip layer then unpacks in about the time of the slower half instead of
/// the sum of both. Blocks cross over through a ring of four 1 MiB buffers;
/// the copy costs far less than the overlap gains.
///
/// This handle belongs to the consumer (the tar reader's callback). Dropping
/// it stops and joins the producer, so no thread outlives an unpack.
final class StreamPipeline {
    private let ring: BlockRing
    private var thread: pthread_t?
    let mediaType: LayerMediaType

    init(_ source: DecompressedStream) throws(StreamFailure) {
        ring = BlockRing(source)
        mediaType = source.mediaType
        var thread = pthread_t()
        let context = Unmanaged.passRetained(ring).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<BlockRing>.fromOpaque(context).takeRetainedValue().produce()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<BlockRing>.fromOpaque(context).release()
            throw .unreadable("cannot start the decompression thread: \(errnoText(status))")
        }
        self.thread = thread
    }

    deinit {
        stop()
    }

    /// Why the stream ended early, once `next()` has returned nil.
    var failure: StreamFailure? { ring.failure }

    /// The next block (valid until the next call), or nil at the end or on failure.
    func next() -> UnsafeRawBufferPointer? { ring.next() }

    /// Reads the rest of the stream, then returns its digest and size.
    func finish() throws(StreamFailure) -> (digest: Digest, bytes: UInt64) {
        while next() != nil {}
        stop()
        // Joined: the stream is the consumer's now.
        return (try ring.source.finish(), ring.source.byteCount)
    }

    private func stop() {
        guard let thread else { return }
        ring.cancel()
        pthread_join(thread, nil)
        self.thread = nil
    }
}

/// The buffers and state both threads share; every field but the slot
/// contents is guarded by `mutex`. A slot at or past `head + filled` belongs
/// to the producer, the others to the consumer.
private final class BlockRing: @unchecked Sendable {
    static let slotSize = 1 << 20
    static let slotCount = 4

    /// Touched only by the producer until it has been joined.
    let source: DecompressedStream
    private let buffers = UnsafeMutableRawPointer.allocate(byteCount: slotSize * slotCount, alignment: 64)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var lengths = [Int](repeating: 0, count: slotCount)
    private var head = 0
    private var filled = 0
    private var consumerHolds = false
    private var ended = false
    private var cancelled = false
    private var sourceFailure: StreamFailure?

    init(_ source: DecompressedStream) {
        self.source = source
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
        buffers.deallocate()
    }

    var failure: StreamFailure? { locked { sourceFailure } }

    func cancel() {
        locked {
            cancelled = true
            pthread_cond_broadcast(changed)
        }
    }

    /// Consumer: hands back the slot it held, then waits for the next one.
    func next() -> UnsafeRawBufferPointer? {
        locked {
            if consumerHolds {
                consumerHolds = false
                head = (head + 1) % Self.slotCount
                filled -= 1
                pthread_cond_broadcast(changed)
            }
            while filled == 0 && !ended { pthread_cond_wait(changed, mutex) }
            guard filled > 0 else { return nil }
            consumerHolds = true
            return UnsafeRawBufferPointer(start: buffers + head * Self.slotSize, count: lengths[head])
        }
    }

    /// Producer: fills free slots until the stream ends or the consumer stops us.
    func produce() {
        var pending = UnsafeRawBufferPointer(start: nil, count: 0)
        while true {
            let slot: Int? = locked {
                while filled == Self.slotCount && !cancelled { pthread_cond_wait(changed, mutex) }
                return cancelled ? nil : (head + filled) % Self.slotCount
            }
            guard let slot else { return }
            let base = buffers + slot * Self.slotSize
            var length = 0
            var done = false
            while length < Self.slotSize {
                if pending.isEmpty {
                    guard let block = source.next() else {
                        done = true
                        break
                    }
                    pending = block
                }
                let take = min(pending.count, Self.slotSize - length)
                if let from = pending.baseAddress { (base + length).copyMemory(from: from, byteCount: take) }
                length += take
                pending = UnsafeRawBufferPointer(rebasing: pending[take...])
            }
            let failure = done ? source.failure : nil
            locked {
                if length > 0 {
                    lengths[slot] = length
                    filled += 1
                }
                if done {
                    ended = true
                    sourceFailure = failure
                }
                pthread_cond_broadcast(changed)
            }
            if done { return }
        }
    }

    private func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}
