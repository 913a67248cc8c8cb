/// A growable byte buffer whose storage stays put between growths, so a
/// request's params can be handed out as pointers into it, and whose
/// capacity is kept when it is emptied, so a kept connection's next request
/// costs no allocation. Owned by one connection (or one event loop), never shared.
struct ByteBuffer: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    private(set) var count = 0

    init() {}

    deinit { base?.deallocate() }

    var isEmpty: Bool { count == 0 }

    /// The bytes held.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    mutating func removeAll() { count = 0 }

    /// Empties it and, when it grew past `keeping` bytes, gives the memory
    /// back: a kept connection that once sent a large request does not hold
    /// its buffers for ever.
    mutating func removeAll(releasingAbove keeping: Int) {
        count = 0
        if capacity > keeping {
            base?.deallocate()
            base = nil
            capacity = 0
        }
    }

    /// Drops the first `n` bytes.
    mutating func removeFirst(_ n: Int) {
        precondition(n <= count)
        if n == count { count = 0; return }
        (base! + 0).copyMemory(from: base! + n, byteCount: count - n)
        count -= n
    }

    mutating func reserve(_ wanted: Int) {
        guard wanted > capacity else { return }
        let grown = max(wanted, capacity * 2, 256)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
        if let base {
            fresh.copyMemory(from: base, byteCount: count)
            base.deallocate()
        }
        base = fresh
        capacity = grown
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        reserve(count + bytes.count)
        (base! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    mutating func append(_ byte: UInt8) {
        reserve(count + 1)
        base!.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }
}
